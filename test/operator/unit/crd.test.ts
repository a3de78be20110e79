/** The CRD YAML: structure the API server relies on (the e2e tests check the API server's own validation). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../harness/controlPlane.js';

type Schema = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(
  readFileSync(path.join(REPO_ROOT, 'crds/ha-signer.dev_validatorhasigners.yaml'), 'utf8'),
);
const version = crd.spec.versions[0]!;
const root = version.schema!.openAPIV3Schema as Schema;
const spec = root.properties.spec as Schema;
/** A schema field by its wire name (client-node's model names it x_kubernetes_… / _default). */
const field = (s: Schema, wire: string) => s[wire] ?? s[wire.replace(/-/g, '_')] ?? s[`_${wire}`];
const rules = (s: Schema) => (field(s, 'x-kubernetes-validations') ?? []) as { rule: string; message: string }[];

describe('ValidatorHASigner CRD', () => {
  it('names, scope, short name, one served storage version', () => {
    expect(crd.metadata!.name).toBe('validatorhasigners.ha-signer.dev');
    expect(crd.spec.group).toBe('ha-signer.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: 'ValidatorHASigner', plural: 'validatorhasigners', shortNames: ['vhs'] });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
  });

  it('status and scale subresources', () => {
    expect(version.subresources!.status).toEqual({});
    expect(version.subresources!.scale).toEqual({
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    });
  });

  it('printer columns: rollup version, ready replicas, Ready, age', () => {
    const cols = Object.fromEntries(version.additionalPrinterColumns!.map((c) => [c.name, c.jsonPath]));
    expect(cols).toMatchObject({
      Rollup: '.spec.rollup.version',
      'Ready-Replicas': '.status.readyReplicas',
      Ready: '.status.conditions[?(@.type=="Ready")].status',
      Age: '.metadata.creationTimestamp',
    });
  });

  it('required fields and defaults', () => {
    expect(spec.required).toEqual(['rollup', 'database', 'keys']);
    expect(spec.properties.rollup.required).toEqual(['address', 'version']);
    expect(field(spec.properties.replicas, 'default')).toBe(2);
    expect(spec.properties.replicas.minimum).toBe(1);
    expect(field(spec.properties.database.properties.secretRef.properties.key, 'default')).toBe('uri');
    expect(field(spec.properties.clients, 'default')).toEqual({});
    expect(field(spec.properties.antiAffinity, 'default')).toBe('preferred');
  });

  it('CEL: address format, immutable rollup, one key source, clients declared', () => {
    const addr = rules(spec.properties.rollup.properties.address);
    expect(addr.map((r) => r.rule)).toEqual(["self.matches('^0x[0-9a-fA-F]{40}$')", 'self == oldSelf']);
    expect(rules(spec.properties.rollup.properties.version).map((r) => r.rule)).toEqual(['self == oldSelf']);
    expect(rules(spec.properties.keys)[0]!.rule).toBe('has(self.secretRef) != has(self.web3signer)');
    expect(rules(spec)[0]!.message).toContain('clients: declare serviceAccounts, tokens or aztecNodes');
  });

  it('conditions are a list-map keyed by type with observedGeneration', () => {
    const conds = root.properties.status.properties.conditions as Schema;
    expect(field(conds, 'x-kubernetes-list-type')).toBe('map');
    expect(field(conds, 'x-kubernetes-list-map-keys')).toEqual(['type']);
    expect(Object.keys(conds.items.properties)).toEqual(
      expect.arrayContaining(['type', 'status', 'observedGeneration', 'lastTransitionTime', 'reason', 'message']),
    );
  });

  it('the chart ships the same CRD', () => {
    // The chart templates the CRD (crds.enabled/keep) from crds/; test/chart/crds.test.ts checks the whole file.
    const source = readFileSync(path.join(REPO_ROOT, 'crds/ha-signer.dev_validatorhasigners.yaml'), 'utf8');
    expect(readFileSync(path.join(REPO_ROOT, 'charts/ha-signer/templates/crd-validatorhasigners.yaml'), 'utf8')).toContain(
      source.slice(source.indexOf('\nspec:\n')).trimEnd(),
    );
  });
});
