// Prints docs/errors.md from the compiled error table (dist/src/errors.js).
import { ERROR_CODES } from '../dist/src/errors.js';

let out = `# Error codes

Every error Corral reports has a stable code. Clients see it in the plain-text
body of an error response and in the \`x-corral-error\` response header; the
access log carries it in \`error\`. Operators see it in \`corral\` command output.

| code | HTTP status | meaning |
| --- | --- | --- |
`;
for (const [code, e] of Object.entries(ERROR_CODES)) {
  out += `| \`${code}\` | ${e.status === 0 ? '–' : `${e.status} ${e.text}`} | ${e.doc} |\n`;
}
out += `
## What each stage can fail into

\`\`\`
read head ──(400 BAD_REQUEST, AMBIGUOUS_LENGTH, BAD_HOST; 431 HEADERS_TOO_LARGE; 505 VERSION; 408 CLIENT_TIMEOUT)
  └─> route ──(503 NO_ROUTE)
        └─> dispatch: sticky pin | scheduler | queue ──(503 NO_SERVER, QUEUE_TIMEOUT, QUEUE_FULL)
              └─> connect ──(retried on another server; then 502 CONNECT_FAILED / 504 CONNECT_TIMEOUT)
                    └─> request body ──(400 BAD_CHUNK, 408 CLIENT_TIMEOUT)
                          └─> response head ──(502 SERVER_FAILED, BAD_RESPONSE; 504 SERVER_TIMEOUT)
                                └─> response body ──(client connection closed: nothing can be sent any more)
\`\`\`

Errors without an HTTP status (\`–\`) are reported by commands: \`corral check\`
and \`corral start\` exit 1 on \`CORRAL_ERR_CONFIG\` and \`CORRAL_ERR_LISTEN\`,
2 on \`CORRAL_ERR_USAGE\`.
`;
process.stdout.write(out);
