// Apache OpenWhisk's JavaScript client (npm `openwhisk`, installed by compose/setup.sh),
// driven by JSON lines: each line read from stdin, {"op": "actions.create", "args": {…}},
// is one call of the client; each answer, one line on stdout, is {"ok": true, "value": …}
// or {"ok": false, "status": <HTTP status>, "body": <the error body>, "message": "…"}.
//
//   OW_APIHOST=http://127.0.0.1:8080 OW_API_KEY=user:token node openwhisk_client.js
'use strict';

const readline = require('readline');
const openwhisk = require('openwhisk');

const ow = openwhisk({ apihost: process.env.OW_APIHOST, api_key: process.env.OW_API_KEY });

async function call(op, args) {
  const [family, method] = op.split('.');
  return ow[family][method](args);
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const { op, args } = JSON.parse(line);
    let answer;
    try {
      const value = await call(op, args || {});
      answer = { ok: true, value: value === undefined ? null : value };
    } catch (error) {
      answer = { ok: false, status: error.statusCode || null, body: error.error || null,
        message: String(error.message) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});
