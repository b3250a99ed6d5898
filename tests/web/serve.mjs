// Serves the web page from server/web and forwards /api/ requests to a running
// groupscope-server, so the page can be viewed and tested before the server embeds it.
//
// Usage: node tests/web/serve.mjs --api http://127.0.0.1:PORT [--port 0]
// Prints `serving http://127.0.0.1:PORT` once it listens. Only loopback API addresses are
// accepted, because this is a test tool.

import http from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../server/web");
const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};
// The same policy the server sends with the embedded page, so the tests catch a violation.
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

function parseArguments(argv) {
  const options = { api: null, port: 0 };
  for (let index = 0; index < argv.length; index += 1) {
    if (argv[index] === "--api") {
      options.api = argv[++index];
    } else if (argv[index] === "--port") {
      options.port = Number(argv[++index]);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(argv[index])}; expected --api URL [--port N]`);
    }
  }
  if (!options.api) {
    throw new Error("missing --api URL; pass the URL groupscope-server printed, for example http://127.0.0.1:8080");
  }
  const api = new URL(options.api);
  if (!LOOPBACK_HOSTS.has(api.hostname)) {
    throw new Error(`--api ${options.api} is not a loopback address; use 127.0.0.1, localhost or [::1]`);
  }
  options.api = api;
  return options;
}

async function serveStatic(request, response) {
  const urlPath = new URL(request.url, "http://localhost").pathname;
  const name = urlPath === "/" ? "index.html" : urlPath.slice(1);
  const file = path.resolve(WEB_ROOT, name);
  const type = CONTENT_TYPES[path.extname(file)];
  if (!file.startsWith(WEB_ROOT + path.sep) || !type) {
    response.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${urlPath}\n`);
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, {
      "content-type": type,
      "cache-control": "no-store",
      "content-security-policy": CONTENT_SECURITY_POLICY,
    }).end(body);
  } catch {
    response.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${urlPath}\n`);
  }
}

function forward(request, response, api) {
  const target = new URL(request.url, api);
  const upstream = http.request(target, { method: request.method, headers: { ...request.headers, host: target.host } }, (reply) => {
    response.writeHead(reply.statusCode ?? 502, reply.headers);
    reply.pipe(response);
  });
  upstream.on("error", (error) => {
    response.writeHead(502, { "content-type": "text/plain" }).end(`failed to reach groupscope-server at ${api}: ${error.message}\n`);
  });
  request.pipe(upstream);
}

const options = parseArguments(process.argv.slice(2));
const server = http.createServer((request, response) => {
  if (request.url.startsWith("/api/")) {
    forward(request, response, options.api);
  } else {
    serveStatic(request, response);
  }
});
server.listen(options.port, "127.0.0.1", () => {
  console.log(`serving http://127.0.0.1:${server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
