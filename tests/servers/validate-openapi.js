// Validates an OpenAPI document against the OpenAPI 3.1 specification,
// with @apidevtools/swagger-parser (schema validation and $ref resolution).
//
//   node tests/servers/validate-openapi.js URL_OR_FILE
//
// Prints "valid: TITLE VERSION" and exits 0, or prints the problems and exits 1.
import SwaggerParser from "@apidevtools/swagger-parser";
import { readFile } from "node:fs/promises";

const source = process.argv[2];
if (!source) {
  console.error("usage: node validate-openapi.js URL_OR_FILE");
  process.exit(2);
}
try {
  const text = source.startsWith("http://") || source.startsWith("https://")
    ? await (await fetch(source)).text()
    : await readFile(source, "utf8");
  const document = JSON.parse(text);
  if (document.openapi !== "3.1.0") throw new Error(`openapi is ${document.openapi}, not 3.1.0`);
  const api = await SwaggerParser.validate(document);
  console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`);
} catch (error) {
  console.error(`invalid: ${error.message}`);
  process.exit(1);
}
