// A small, fast OAuth 2.0 token endpoint for the benchmarks, on 127.0.0.1:
// the client_credentials grant with HTTP Basic or form credentials, opaque
// random tokens. Plain node:http, no dependencies.
//
//   node bench/token-server.js PORT CLIENT_ID CLIENT_SECRET
//
// Prints "ready" when it listens. Exits when stdin closes or on SIGTERM.
import http from "node:http";
import crypto from "node:crypto";

const [port, clientId, clientSecret] = process.argv.slice(2);
if (!port || !clientId || !clientSecret) {
  console.error("usage: node bench/token-server.js PORT CLIENT_ID CLIENT_SECRET");
  process.exit(2);
}

function credentials(req, form) {
  const header = req.headers.authorization || "";
  if (header.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6), "base64").toString();
    const at = decoded.indexOf(":");
    return [decodeURIComponent(decoded.slice(0, at)), decodeURIComponent(decoded.slice(at + 1))];
  }
  return [form.get("client_id"), form.get("client_secret")];
}

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const form = new URLSearchParams(body);
    const [id, secret] = credentials(req, form);
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Cache-Control", "no-store");
    if (req.method !== "POST" || req.url !== "/token") {
      res.writeHead(404).end('{"error":"not_found"}');
    } else if (id !== clientId || secret !== clientSecret) {
      res.writeHead(401).end('{"error":"invalid_client"}');
    } else if (form.get("grant_type") !== "client_credentials") {
      res.writeHead(400).end('{"error":"unsupported_grant_type"}');
    } else {
      const token = crypto.randomBytes(24).toString("base64url");
      res.writeHead(200).end(JSON.stringify({ access_token: token, token_type: "Bearer", expires_in: 3600 }));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
