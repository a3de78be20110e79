/** One source of truth for the CRD: the chart's template is generated from crds/ and renders to the same object. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { CRD_SOURCE, CRD_TEMPLATE, crdTemplate } from './generate-crd-template.js';
import { find, helm, REPO_ROOT, template } from './support.js';

describe('CRD template', () => {
  it('is what the generator makes of crds/ (run node test/chart/generate-crd-template.ts after editing crds/)', () => {
    expect(readFileSync(CRD_TEMPLATE, 'utf8')).toBe(crdTemplate(readFileSync(CRD_SOURCE, 'utf8')));
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'test/chart/generate-crd-template.ts'), '--check'], { stdio: 'pipe' });
  });

  it('generator keeps Go template braces of the source literal', () => {
    const out = crdTemplate('kind: CustomResourceDefinition\nmetadata:\n  name: x.y\nspec:\n  description: "{{ not a template }}"\n');
    expect(out).toContain('description: "{{ "{{" }} not a template }}"');
  });

  it.skipIf(!helm)('renders to the same spec and name as crds/, with release labels', () => {
    const source = k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(CRD_SOURCE, 'utf8'));
    const rendered = find(template(), 'CustomResourceDefinition') as k8s.V1CustomResourceDefinition;
    expect(rendered.metadata!.name).toBe(source.metadata!.name);
    expect(rendered.spec).toEqual(source.spec);
    expect(rendered.metadata!.labels).toMatchObject({
      ...source.metadata!.labels,
      'app.kubernetes.io/instance': 'rel',
      'app.kubernetes.io/managed-by': 'Helm',
    });
  });
});
