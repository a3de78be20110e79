/**
 * One source of truth for the CRD: crds/ at the repository root. The chart's templates/crd-validatorhasigners.yaml
 * is generated from it (spec copied verbatim; metadata templated for crds.enabled / crds.keep and release labels),
 * as cert-manager's chart templates its CRDs. test/chart/crds.test.ts fails when the two drift.
 *
 *   node test/chart/generate-crd-template.ts          rewrite the template
 *   node test/chart/generate-crd-template.ts --check  exit 1 if it is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CRD_SOURCE = path.join(ROOT, 'crds/ha-signer.dev_validatorhasigners.yaml');
export const CRD_TEMPLATE = path.join(ROOT, 'charts/ha-signer/templates/crd-validatorhasigners.yaml');

export function crdTemplate(source: string): string {
  const lines = source.split('\n');
  const name = /^ {2}name: (\S+)$/m.exec(source)?.[1];
  const specAt = lines.indexOf('spec:');
  if (!name || specAt < 0 || !lines.includes('kind: CustomResourceDefinition')) {
    throw new Error(`${CRD_SOURCE}: expected a CustomResourceDefinition with metadata.name and a top-level spec:`);
  }
  // Go template actions in the source (none today) must stay literal text.
  const spec = lines.slice(specAt).join('\n').replaceAll('{{', '{{ "{{" }}');
  return [
    '# GENERATED from crds/ha-signer.dev_validatorhasigners.yaml by test/chart/generate-crd-template.ts; do not edit.',
    '{{- if .Values.crds.enabled }}',
    'apiVersion: apiextensions.k8s.io/v1',
    'kind: CustomResourceDefinition',
    'metadata:',
    `  name: ${name}`,
    '  {{- if .Values.crds.keep }}',
    '  annotations:',
    '    # helm uninstall leaves the CRD, and so every ValidatorHASigner, in place.',
    '    helm.sh/resource-policy: keep',
    '  {{- end }}',
    '  labels:',
    '    {{- include "ha-signer.crdLabels" . | nindent 4 }}',
    spec.replace(/\n+$/, ''),
    '{{- end }}',
    '',
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const want = crdTemplate(readFileSync(CRD_SOURCE, 'utf8'));
  if (process.argv.includes('--check')) {
    const have = readFileSync(CRD_TEMPLATE, 'utf8');
    if (have !== want) {
      console.error(`${path.relative(ROOT, CRD_TEMPLATE)} is out of date: run node test/chart/generate-crd-template.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(CRD_TEMPLATE, want);
    console.log(`wrote ${path.relative(ROOT, CRD_TEMPLATE)}`);
  }
}
