/** Helpers of the chart tests: helm (from the test control plane build) and promtool (test/control-plane/build-promtool.sh). */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { findControlPlaneBinaries, REPO_ROOT } from '../harness/controlPlane.js';

export { REPO_ROOT };
export const CHART = path.join(REPO_ROOT, 'charts/ha-signer');
export const helm = findControlPlaneBinaries()?.helm;
if (!helm)
  console.warn('chart tests skipped: helm not built (bash test/control-plane/build.sh builds .cache/control-plane/<version>/bin/helm)');

/** .cache/promtool/<version>/bin/promtool, the newest version built. */
export function findPromtool(): string | undefined {
  const dir = path.join(REPO_ROOT, '.cache/promtool');
  if (!existsSync(dir)) return undefined;
  for (const version of readdirSync(dir).sort().reverse()) {
    const bin = path.join(dir, version, 'bin/promtool');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

export type Obj = k8s.KubernetesObject & {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form spec of many kinds, read by tests only
  spec?: any;
  data?: Record<string, string>;
  rules?: k8s.V1PolicyRule[];
  roleRef?: k8s.V1RoleRef;
  subjects?: k8s.RbacV1Subject[];
};

/** `helm template rel <chart> -n ops <args>` parsed into objects. */
export function template(...args: string[]): Obj[] {
  return parseDocuments(templateText(...args));
}

/** Multi-document YAML into objects; documents that are only comments (a template rendered empty) are skipped. */
export function parseDocuments(text: string): Obj[] {
  return text
    .split(/^---[ \t]*$/m)
    .filter((doc) => doc.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('#')))
    .map((doc) => k8s.loadYaml<Obj>(doc));
}

export function templateText(...args: string[]): string {
  return execFileSync(helm!, ['template', 'rel', CHART, '--namespace', 'ops', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The error helm prints when it refuses to render (empty string when it renders). */
export function templateError(...args: string[]): string {
  const r = spawnSync(helm!, ['template', 'rel', CHART, '--namespace', 'ops', ...args], { encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr;
}

export function find(objs: Obj[], kind: string, name?: string): Obj {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata?.name === name));
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in ${objs.map((x) => `${x.kind}/${x.metadata?.name}`).join(', ')}`);
  return o;
}

/** Values that turn every optional feature on (monitoring objects forced, as in GitOps without the CRDs' discovery). */
export const ALL_FEATURES = [
  '--set',
  'metrics.serviceMonitor.enabled=true',
  '--set',
  'metrics.serviceMonitor.force=true',
  '--set',
  'metrics.prometheusRule.enabled=true',
  '--set',
  'metrics.prometheusRule.force=true',
  '--set',
  'metrics.dashboard.enabled=true',
  '--set',
  'podLabels.team=validators',
  '--set',
  'podAnnotations.note=x',
  '--set',
  'topologySpreadConstraints[0].maxSkew=1',
  '--set',
  'topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone',
  '--set',
  'topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway',
  '--set',
  'priorityClassName=',
  '--set',
  'serviceAccount.annotations.owner=ops',
];

/**
 * NOTES.txt as `helm install` prints it, without a cluster: a copy of the chart where the notes become a named
 * template shown through one extra manifest (helm template never prints NOTES.txt; install --dry-run needs a cluster).
 */
export function renderNotes(...args: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ha-signer-notes-'));
  try {
    const copy = path.join(dir, 'ha-signer');
    cpSync(CHART, copy, { recursive: true });
    const notes = readFileSync(path.join(copy, 'templates/NOTES.txt'), 'utf8');
    unlinkSync(path.join(copy, 'templates/NOTES.txt'));
    writeFileSync(path.join(copy, 'templates/_notes-preview.tpl'), `{{- define "notes-preview" -}}\n${notes}\n{{- end -}}\n`);
    writeFileSync(path.join(copy, 'templates/notes-preview.yaml'), 'kind: NotesPreview\ntext: {{ include "notes-preview" . | toJson }}\n');
    const out = execFileSync(
      helm!,
      ['template', 'rel', copy, '--namespace', 'ops', '--show-only', 'templates/notes-preview.yaml', ...args],
      { encoding: 'utf8' },
    );
    return k8s.loadYaml<{ text: string }>(out).text;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
