// Validates a SARIF log against the official SARIF 2.1.0 JSON schema
// (sarif-2.1.0-rtm.5, as shipped in @microsoft/jest-sarif), with ajv.
//
//   node tests/servers/validate-sarif.js FILE    (or - for standard input)
//
// Prints "valid: N results" and exits 0, or prints the errors and exits 1.
import Ajv from "ajv";
import draft04 from "ajv/lib/refs/json-schema-draft-04.json" with { type: "json" };
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const schemaPath = require.resolve("@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
const schema = JSON.parse(readFileSync(schemaPath, "utf8"));

const source = process.argv[2];
if (!source) {
  console.error("usage: node validate-sarif.js FILE|-");
  process.exit(2);
}
const text = readFileSync(source === "-" ? 0 : source, "utf8");
const ajv = new Ajv({ schemaId: "auto", allErrors: true, format: "full" });
ajv.addMetaSchema(draft04);
const validate = ajv.compile(schema);
let log;
try {
  log = JSON.parse(text);
} catch (error) {
  console.error(`invalid: not JSON: ${error.message}`);
  process.exit(1);
}
if (!validate(log)) {
  console.error("invalid:");
  for (const error of validate.errors) console.error(`  ${error.dataPath || "/"} ${error.message}`);
  process.exit(1);
}
const results = log.runs.reduce((n, run) => n + (run.results || []).length, 0);
console.log(`valid: ${results} results`);
