/**
 * Alerts and dashboard against the metrics the code really exports (src/signer/metrics.ts, src/operator/metrics.ts,
 * read from their live registries), and the alerts' behaviour with `promtool test rules` on synthetic series
 * (promtool built by test/control-plane/build-promtool.sh; those checks skip with a message without it).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorMetrics } from '../../src/operator/metrics.js';
import { SignerMetrics } from '../../src/signer/metrics.js';
import { registerTlsMetrics } from '../../src/signer/tls.js';
import { CHART, find, findPromtool, helm, REPO_ROOT, template } from './support.js';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
}

const rulesFile = k8s.loadYaml<RuleFile>(readFileSync(path.join(CHART, 'files/prometheus-rules.yaml'), 'utf8'));
const alerts = rulesFile.groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(path.join(CHART, 'files/dashboards/ha-signer.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: unknown }[] };
};
const dashboardQueries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Labels Prometheus attaches to every scraped series (ServiceMonitor targets), and histograms' `le`. */
const TARGET_LABELS = ['namespace', 'job', 'pod', 'instance', 'service', 'container', 'endpoint', 'le'];
/** Metrics of other exporters the alerts use, with their labels (kube-state-metrics: migration Jobs). */
const EXTERNAL: Record<string, string[]> = { kube_job_failed: ['job_name', 'condition'] };

/** Every series name the registries expose (histograms as _bucket/_sum/_count) with their label names. */
async function exportedMetrics(): Promise<Map<string, string[]>> {
  const signer = new SignerMetrics();
  registerTlsMetrics(signer.registry); // registered by serve only when the signing port speaks HTTPS
  signer.setPoolSource({ poolStats: () => ({ total: 1, idle: 1, waiting: 0 }) });
  const registries = [signer.registry, new OperatorMetrics().registry];
  const names = new Map<string, string[]>();
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      // prom-client's metric objects (Counter, Gauge, Histogram) carry their label names; get() gives the type.
      const m = metric as unknown as { name: string; labelNames?: string[]; get(): Promise<{ type: string }> };
      const { name, labelNames = [] } = m;
      const { type } = await m.get();
      const series =
        type === 'histogram'
          ? [`${name}_bucket`, `${name}_sum`, `${name}_count`]
          : type === 'summary'
            ? [name, `${name}_sum`, `${name}_count`]
            : [name];
      for (const s of series) names.set(s, [...labelNames]);
    }
  }
  return names;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/** Metric names and the label names a PromQL expression uses (strings, ranges and Grafana variables removed). */
export function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
  const labels: string[] = [];
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k, list: string) => {
    labels.push(
      ...list
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
    return ' ';
  });
  e = e.replace(/\{([^}]*)\}/g, (_m, matchers: string) => {
    for (const m of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.push(m[1]!);
    return ' ';
  });
  // Whole identifiers; those followed by `(` are functions or aggregations.
  const metrics = [...e.matchAll(/(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)/g)]
    .filter((m) => m[2] === '' && !KEYWORDS.has(m[1]!))
    .map((m) => m[1]!);
  return { metrics: [...new Set(metrics)], labels: [...new Set(labels)] };
}

function checkNames(expr: string, exported: Map<string, string[]>): string[] {
  const { metrics, labels } = promqlNames(expr);
  const problems: string[] = [];
  const known = new Set(TARGET_LABELS);
  for (const m of metrics) {
    const l = exported.get(m) ?? EXTERNAL[m];
    if (!l) problems.push(`metric ${m} is not exported`);
    else l.forEach((x) => known.add(x));
  }
  for (const l of labels) if (!known.has(l)) problems.push(`label ${l} is on none of ${metrics.join(', ')}`);
  if (metrics.length === 0) problems.push('no metric');
  return problems;
}

describe('alerts and dashboard use exported metric names', () => {
  let exported: Map<string, string[]>;
  beforeAll(async () => {
    exported = await exportedMetrics();
  });

  it('the PromQL name extraction finds metrics and labels (and so can fail)', () => {
    expect(
      promqlNames(
        'sum by (namespace, job) (rate(ha_signer_x_total{outcome="a b"}[5m])) / on(job) group_left(pod) other_metric offset 5m > 0.1',
      ),
    ).toEqual({
      metrics: ['ha_signer_x_total', 'other_metric'],
      labels: ['namespace', 'job', 'pod', 'outcome'],
    });
    expect(checkNames('rate(ha_signer_sign_request_total[5m])', new Map([['ha_signer_sign_requests_total', ['outcome']]]))).toEqual([
      'metric ha_signer_sign_request_total is not exported',
    ]);
    expect(
      checkNames('sum by (result) (ha_signer_sign_requests_total)', new Map([['ha_signer_sign_requests_total', ['outcome']]])),
    ).toEqual(['label result is on none of ha_signer_sign_requests_total']);
  });

  it('every alert expression', () => {
    for (const rule of alerts) expect(checkNames(rule.expr, exported), rule.alert).toEqual([]);
  });

  it('every dashboard query', () => {
    expect(dashboardQueries.length).toBeGreaterThan(20);
    for (const q of dashboardQueries) expect(checkNames(q.expr, exported), `${q.panel}: ${q.expr}`).toEqual([]);
    for (const v of dashboard.templating.list)
      if (typeof v.query === 'object')
        expect(
          checkNames(
            JSON.stringify((v.query as { query: string }).query)
              .replace(/^"|"$/g, '')
              .replace(/\\"/g, '"')
              .replace(/^label_values\((.*),\s*\w+\)$/, '$1'),
            exported,
          ),
          v.name,
        ).toEqual([]);
  });

  it('the dashboard covers signing by outcome, latency, lock waits, takeovers, pool, readiness, failover safety, JSON-RPC, operator', () => {
    const all = dashboardQueries.map((q) => q.expr).join('\n');
    for (const needed of [
      /sum by \(outcome\) \(rate\(ha_signer_sign_requests_total/,
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(ha_signer_sign_request_duration_seconds_bucket/,
      /ha_signer_lock_wait_duration_seconds_bucket/,
      /ha_signer_duty_takeovers_total/,
      /ha_signer_db_pool_connections/,
      /max by \(pod\) \(ha_signer_ready/,
      /sum by \(result\) \(rate\(ha_signer_operator_reconciles_total/,
      /ha_signer_database_pool_max/,
      /min by \(pod, check\) \(ha_signer_readiness_check/,
      /ha_signer_database_synchronous_replication\{/,
      /ha_signer_database_standbys/,
      /ha_signer_database_history_regressed_validators/,
      /sum by \(reason\) \(rate\(ha_signer_sign_unavailable_total/,
      /sum by \(method, outcome\) \(rate\(ha_signer_jsonrpc_requests_total/,
      /ha_signer_jsonrpc_request_duration_seconds_bucket/,
      /outcome=~"signed_unclaimed/,
      /ha_signer_tls_certificate_not_after_seconds/,
    ])
      expect(all).toMatch(needed);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const q of dashboardQueries)
      if (q.expr.includes('ha_signer_') && !q.expr.includes('operator'))
        expect(q.expr, q.panel).toContain('namespace=~"$namespace", job=~"$signer"');
  });

  it('every alert has severity, summary, description, a runbook section in docs/operations.md and a promtool test', () => {
    const runbooks = readFileSync(path.join(REPO_ROOT, 'docs/operations.md'), 'utf8');
    const promtoolTests = readFileSync(path.join(REPO_ROOT, 'test/chart/alerts.promtool.yaml'), 'utf8');
    expect(alerts.length).toBeGreaterThanOrEqual(12);
    for (const rule of alerts) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      expect(runbooks, rule.alert).toMatch(new RegExp(`^### ${rule.alert}$`, 'm'));
      expect(promtoolTests, rule.alert).toMatch(new RegExp(`alertname: ${rule.alert}$`, 'm'));
    }
  });
});

describe.skipIf(!helm)('rendered monitoring objects', () => {
  it('PrometheusRule carries the rule file, minus disabled alerts, plus labels and runbook links', () => {
    const base = ['--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.force=true'];
    const rendered = find(template(...base), 'PrometheusRule').spec as RuleFile;
    expect(rendered.groups.map((g) => g.rules.map((r) => ({ ...r, annotations: undefined })))).toEqual(
      rulesFile.groups.map((g) => g.rules.map((r) => ({ ...r, annotations: undefined }))),
    );
    expect(rendered.groups[0]!.rules[0]!.annotations!.runbook).toBe('docs/operations.md#hasignerslashingprotectiontriggered');
    const custom = find(
      template(
        ...base,
        '--set',
        'metrics.prometheusRule.disabledAlerts={HASignerDutyTakeovers,HASignerMigrationFailed}',
        '--set',
        'metrics.prometheusRule.additionalAlertLabels.team=validators',
        '--set',
        'metrics.prometheusRule.additionalAlertLabels.severity=page',
        '--set',
        'metrics.prometheusRule.runbookBaseUrl=https://example.org/ops.md',
      ),
      'PrometheusRule',
    ).spec as RuleFile;
    const names = custom.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).toHaveLength(alerts.length - 2);
    expect(names).not.toContain('HASignerDutyTakeovers');
    for (const r of custom.groups.flatMap((g) => g.rules)) {
      expect(r.labels!.team).toBe('validators');
      expect(r.labels!.severity).toBe(alerts.find((a) => a.alert === r.alert)!.labels!.severity);
      expect(r.annotations!.runbook_url).toBe(`https://example.org/ops.md#${r.alert.toLowerCase()}`);
    }
  });

  it('dashboard ConfigMap: the JSON file verbatim, sidecar label, optional namespace', () => {
    const cm = find(template('--set', 'metrics.dashboard.enabled=true', '--set', 'metrics.dashboard.namespace=monitoring'), 'ConfigMap');
    expect(cm.metadata!.namespace).toBe('monitoring');
    expect(cm.metadata!.labels!.grafana_dashboard).toBe('1');
    expect(JSON.parse(cm.data!['ha-signer.json']!)).toEqual(dashboard);
    expect(template().some((o) => o.kind === 'ConfigMap')).toBe(false);
  });
});

const promtool = findPromtool();
if (!promtool && process.env.HA_SIGNER_REQUIRE_PROMTOOL === '1')
  throw new Error('HA_SIGNER_REQUIRE_PROMTOOL=1 but promtool is not built: bash test/control-plane/build-promtool.sh');
if (!promtool) console.warn('promtool tests skipped: promtool not built (bash test/control-plane/build-promtool.sh)');

describe.skipIf(!promtool || !helm)('promtool', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ha-signer-promtool-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => execFileSync(promtool!, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  it('promtool check rules: the rendered PrometheusRule (annotation templates included)', () => {
    const spec = find(
      template('--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.force=true'),
      'PrometheusRule',
    ).spec as RuleFile;
    writeFileSync(path.join(dir, 'rendered.yaml'), JSON.stringify(spec));
    expect(run('check', 'rules', 'rendered.yaml')).toMatch(new RegExp(`SUCCESS: ${alerts.length} rules found`));
  });

  it('promtool test rules: each alert fires, and only, when its synthetic series say so', () => {
    const spec = find(
      template('--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.force=true'),
      'PrometheusRule',
    ).spec as RuleFile;
    // Annotations are not compared: templated text, checked by `check rules` above.
    const withoutAnnotations = { groups: spec.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }) => r) })) };
    writeFileSync(path.join(dir, 'rules.yaml'), JSON.stringify(withoutAnnotations));
    copyFileSync(path.join(REPO_ROOT, 'test/chart/alerts.promtool.yaml'), path.join(dir, 'alerts.promtool.yaml'));
    expect(run('test', 'rules', 'alerts.promtool.yaml')).toContain('SUCCESS');
  });

  it('promtool test rules fails when an alert is broken (the test can fail)', () => {
    const broken = {
      groups: rulesFile.groups.map((g) => ({
        ...g,
        rules: g.rules.map(({ annotations: _a, ...r }) =>
          r.alert === 'HASignerPoolSaturated' ? { ...r, expr: r.expr.replace('>= 0.9', '>= 1.5') } : r,
        ),
      })),
    };
    writeFileSync(path.join(dir, 'rules.yaml'), JSON.stringify(broken));
    copyFileSync(path.join(REPO_ROOT, 'test/chart/alerts.promtool.yaml'), path.join(dir, 'alerts.promtool.yaml'));
    expect(() => run('test', 'rules', 'alerts.promtool.yaml')).toThrow(/HASignerPoolSaturated/);
  });

  it('promtool check rules: every dashboard query parses (as a recording rule)', () => {
    const vars: Record<string, string> = {
      __rate_interval: '5m',
      __range: '1h',
      __interval: '1m',
      namespace: '.*',
      signer: '.*',
      operator: '.*',
    };
    const rules = dashboardQueries.map((q, i) => ({
      record: `dashboard:query_${i}`,
      expr: q.expr.replace(/\$(\w+)/g, (_m, v: string) => vars[v] ?? `$${v}`),
    }));
    for (const r of rules) expect(r.expr).not.toContain('$');
    writeFileSync(path.join(dir, 'dashboard-queries.yaml'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    expect(run('check', 'rules', 'dashboard-queries.yaml')).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });
});
