// Validates custom resources against the OpenAPI schemas of their CRDs, as published in the
// @kubernetes-models packages (prometheus-operator, KEDA). Reads a JSON array of
// {"name": "...", "object": {...}} from stdin; prints one line per object; exits 1 on any error.
// The packages live in the folder named by ADS_DEPLOY_NODE_MODULES (scripts/test-deploy.sh
// installs them there).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.ADS_DEPLOY_NODE_MODULES;
if (!modules) {
  console.error("ADS_DEPLOY_NODE_MODULES is not set");
  process.exit(2);
}
const MODELS = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
};

const items = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const { name, object } of items) {
  const dir = MODELS[object.apiVersion];
  if (!dir) {
    console.log(`FAIL ${name}: no CRD schema known for ${object.apiVersion}`);
    failed++;
    continue;
  }
  const file = join(modules, dir, `${object.kind}.js`);
  let model;
  try {
    model = await import(pathToFileURL(file).href);
  } catch (e) {
    console.log(`FAIL ${name}: no model for ${object.apiVersion} ${object.kind} (${e.message})`);
    failed++;
    continue;
  }
  const Kind = model[object.kind];
  try {
    new Kind(object).validate();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
