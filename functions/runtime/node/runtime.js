'use strict';
/*
 * faasflow's in-container runtime for Node.js (18+, built-in modules only): the OpenWhisk
 * action protocol over HTTP/1.1, the same contract as functions/runtime/python/runtime.py
 * (written down in functions/README.md):
 *
 *   POST /init   {"value": {"code", "main", "env"}} -> 200 {"ok": true}; a second /init -> 403;
 *                code that does not load, or exports no MAIN -> 502 {"error"}
 *   POST /run    {"value", "activation_id", "deadline", "env"} -> 200 <result JSON> or
 *                502 {"error"}; with "X-Faasflow-Logs: 1": {"output" | "output_base64" |
 *                "error", "logs"}, "output" being exactly what cold mode writes to stdout
 *   GET /health  -> 200 {"ok": true}
 *
 * The handler: module.exports.main = (event, context) => result (or a Promise of it); the
 * code is a CommonJS module. OpenWhisk-style code that only declares `function main(params)`
 * works too. Modes: `node runtime.js` (or FAASFLOW_MODE=warm) serves; the handler comes from
 * /init, or from FAASFLOW_HANDLER=<file.js> with FAASFLOW_MAIN (default handle).
 * `node runtime.js --cold` (or FAASFLOW_MODE=cold) is the cold contract with that handler:
 * stdin in, stdout out, once.
 *
 * Listens on the unix socket $FAASFLOW_RUNTIME_SOCKET (default /run/faasflow/runtime.sock,
 * mode 0666, bound under a temporary name and renamed into place once listening), or on
 * 0.0.0.0:$FAASFLOW_RUNTIME_PORT when that is set. /run calls are served one at a time.
 */

const fs = require('fs');
const http = require('http');
const Module = require('module');
const path = require('path');
const vm = require('vm');

const DEFAULT_SOCKET = '/run/faasflow/runtime.sock';
const LOG_CAP = 64 * 1024;
const MAX_BODY = Number(process.env.FAASFLOW_RUNTIME_MAX_BODY_BYTES || 32 * 1024 * 1024);

class Failure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(err) {
  if (err instanceof Error) return err.message ? `${err.name}: ${err.message}` : err.name;
  return `thrown: ${typeof err === 'string' ? err : safeJson(err)}`;
}

// The error's stack without the runtime's own frames: what a function's author needs.
function stackOf(err) {
  if (!(err instanceof Error) || !err.stack) return describe(err);
  return err.stack.split('\n').filter((line) => !line.includes(__filename) && !line.includes('(node:internal')
    && !line.includes(' node:internal')).join('\n');
}

function safeJson(value) {
  try {
    return JSON.stringify(value);
  } catch (_) {
    return String(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Input and output: the rule of decode_input and encode_output in the Python runtime, which
// the host uses for warm calls (functions/README.md, "What a handler gets").

const JSON_MEDIA_TYPES = new Set(['application/json', 'text/json']);
const MAX_JSON_DEPTH = 256;
const NOT_JSON = Symbol('not JSON');
const LONE_SURROGATE = /[\uD800-\uDFFF]/u; // with the u flag, a surrogate pair is one character

// The event as a handler sees it, warm or cold: bytes that are not UTF-8 as
// {data_base64: …}; for a JSON media type (application/json, text/json, *+json) or none, the
// JSON value when the text is strict JSON, else the text; for any other type, the text.
// An empty body is '' (it is no JSON).
function decodeInput(data, contentType) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data);
  } catch (_) {
    return { data_base64: Buffer.from(data).toString('base64') };
  }
  const media = String(contentType || '').split(';', 1)[0].trim().toLowerCase();
  if (media && !JSON_MEDIA_TYPES.has(media) && !media.endsWith('+json')) return text;
  const value = parseStrict(text);
  return value === NOT_JSON ? text : value;
}

// JSON that every runtime reads as the same value, or NOT_JSON: no number beyond a double's
// range, no lone surrogate, at most MAX_JSON_DEPTH deep.
function parseStrict(text) {
  if (!depthWithin(text, MAX_JSON_DEPTH)) return NOT_JSON;
  try {
    return JSON.parse(text, (key, value) => {
      if (LONE_SURROGATE.test(key)) throw new RangeError('a lone surrogate');
      if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('out of range');
      if (typeof value === 'string' && LONE_SURROGATE.test(value)) throw new RangeError('a lone surrogate');
      return value;
    });
  } catch (_) {
    return NOT_JSON;
  }
}

function depthWithin(text, limit) {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) return false;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return true;
}

// The output of a result, warm or cold: a Buffer as it is, a string as its UTF-8 text,
// anything else as compact JSON.
function encodeOutput(result) {
  if (result instanceof Uint8Array) return Buffer.from(result); // a Buffer is one
  return Buffer.from(typeof result === 'string' ? result : encode(result), 'utf8');
}

// The answer with logs: the output exactly as cold mode writes it to stdout, as text when it
// is UTF-8, else base64.
function outputReply(output, logs) {
  let field;
  try {
    field = `"output":${JSON.stringify(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(output))}`;
  } catch (_) {
    field = `"output_base64":${JSON.stringify(output.toString('base64'))}`;
  }
  return `{${field},"logs":${JSON.stringify(logs)}}`;
}

// ---------------------------------------------------------------------------------------------
// Loading a handler.

function loadSource(source, filename, main) {
  const mod = new Module(filename, module);
  mod.filename = filename;
  mod.paths = Module._nodeModulePaths(path.dirname(filename));
  // OpenWhisk code often only declares `function main(params)`: export it when it does.
  const exportDeclared = isIdentifier(main)
    ? `\n;if (typeof ${main} === 'function' && !(${JSON.stringify(main)} in Object(module.exports))) module.exports[${JSON.stringify(main)}] = ${main};\n`
    : '';
  try {
    new vm.Script(Module.wrap(source), { filename }); // syntax errors point at the code as sent
  } catch (err) {
    process.stderr.write(`${err.stack}\n`);
    const where = String(err.stack).split('\n', 1)[0];
    throw new Failure(502, `${describe(err)}${where.startsWith(filename) ? ` (${where})` : ''}`);
  }
  try {
    mod._compile(source + exportDeclared, filename);
  } catch (err) {
    process.stderr.write(`${stackOf(err)}\n`);
    throw new Failure(502, `loading the code failed: ${describe(err)}`);
  }
  return pick(mod.exports, main);
}

function isIdentifier(name) {
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) return false;
  try {
    new Function(`return typeof ${name}`); // eslint-disable-line no-new-func -- rejects reserved words
    return true;
  } catch (_) {
    return false;
  }
}

function loadFile(file, main) {
  let source;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Failure(502, `cannot read the handler ${file}: ${err.message}`);
  }
  return loadSource(source, path.resolve(file), main);
}

function pick(exported, main) {
  if (exported && typeof exported[main] === 'function') return exported[main];
  if (typeof exported === 'function') return exported; // module.exports = (event, context) => …
  throw new Failure(502, `the code exports no function '${main}'`);
}

// ---------------------------------------------------------------------------------------------
// Calling it, with its output captured.

function makeContext(activationId, deadline, env) {
  return {
    activationId,
    deadline, // epoch milliseconds, or null
    env, // this call's variables (CE_*, FAASFLOW_*), beside process.env
    functionName: process.env.FAASFLOW_FUNCTION || '',
    remainingMs() {
      return deadline == null ? null : deadline - Date.now();
    },
  };
}

class LogBuffer {
  constructor() {
    this.parts = [];
    this.room = LOG_CAP;
  }

  write(chunk, encoding) {
    if (this.room <= 0) return;
    let data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), typeof encoding === 'string' ? encoding : 'utf8');
    if (data.length > this.room) data = data.subarray(0, this.room);
    this.parts.push(data);
    this.room -= data.length;
  }

  text() {
    // A character cut at the cap decodes to U+FFFD; drop it, as the Python runtime does.
    return Buffer.concat(this.parts).toString('utf8').replace(/\uFFFD$/, '');
  }
}

// Redirect process.stdout/stderr writes (console.* goes through them) into `sink` until the
// returned function is called. `sink` is a LogBuffer, or another stream's write.
function redirect(sink) {
  const saved = [process.stdout.write, process.stderr.write];
  const write = function (chunk, encoding, callback) {
    sink.write(chunk, encoding);
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
  process.stdout.write = write;
  process.stderr.write = write;
  return () => {
    [process.stdout.write, process.stderr.write] = saved;
  };
}

async function call(handler, value, context, sink) {
  const restore = sink ? redirect(sink) : null;
  try {
    return await handler(value, context);
  } catch (err) {
    process.stderr.write(`${stackOf(err)}\n`);
    throw new Failure(502, describe(err));
  } finally {
    if (restore) restore();
  }
}

function encode(result) {
  if (result === undefined) return 'null';
  let text;
  try {
    text = JSON.stringify(result);
  } catch (err) {
    throw new Failure(502, `the result is not JSON-serializable: ${err.message}`);
  }
  if (text === undefined) throw new Failure(502, `the result is not JSON-serializable: a ${typeof result}`);
  return text;
}

// ---------------------------------------------------------------------------------------------
// The runtime: /init and /run.

class Runtime {
  constructor(handler = null, loadError = null) {
    this.handler = handler;
    this.loadError = loadError;
    this.preloaded = handler !== null || loadError !== null;
    this.initialized = false;
    this.queue = Promise.resolve(); // /run calls, one at a time
  }

  init(body) {
    const value = body && typeof body === 'object' ? body.value : undefined;
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new Failure(400, 'expected {"value": {"code": …, "main": …}}');
    }
    if (this.initialized) throw new Failure(403, 'Cannot initialize the action more than once.');
    const env = value.env || {};
    if (typeof env !== 'object' || Array.isArray(env)) throw new Failure(400, 'env must be an object');
    for (const [key, val] of Object.entries(env)) process.env[key] = typeof val === 'string' ? val : JSON.stringify(val);
    if (!this.preloaded) { // a preloaded runtime takes only env from /init
      if (value.binary) throw new Failure(502, 'binary (zip) code is not supported: send the source');
      const { code } = value;
      const main = value.main || 'main';
      if (typeof code !== 'string' || typeof main !== 'string') throw new Failure(502, 'code and main must be strings');
      this.handler = loadSource(code, path.join(process.cwd(), '__action__.js'), main);
    }
    this.initialized = true;
    return [200, '{"ok":true}'];
  }

  run(body, wantLogs) {
    const turn = this.queue.then(() => this.runNow(body, wantLogs));
    this.queue = turn.catch(() => {});
    return turn;
  }

  async runNow(body, wantLogs) {
    if (!body || typeof body !== 'object' || !('value' in body)) throw new Failure(400, 'expected {"value": <input>, …}');
    if (this.loadError !== null) throw new Failure(502, `the handler could not be loaded: ${this.loadError}`);
    if (this.handler === null) throw new Failure(403, 'not initialized: POST /init first');
    const env = body.env || {};
    if (typeof env !== 'object' || Array.isArray(env)) throw new Failure(400, 'env must be an object');
    let deadline = null;
    if (body.deadline != null && body.deadline !== '') {
      deadline = Number(body.deadline);
      if (!Number.isFinite(deadline)) throw new Failure(400, `deadline must be epoch milliseconds, not ${safeJson(body.deadline)}`);
      if (deadline <= 0) deadline = null; // 0 means none
    }
    for (const key of ['activation_id', 'deadline']) { // as OpenWhisk's runtimes set them
      if (body[key] != null) process.env[`__OW_${key.toUpperCase()}`] = String(body[key]);
    }
    const context = makeContext(body.activation_id ? String(body.activation_id) : null, deadline,
      Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])));
    const logs = wantLogs ? new LogBuffer() : null;
    let output;
    try {
      const result = await call(this.handler, body.value, context, logs);
      if (!logs) { // OpenWhisk's answer: the result as JSON
        return [200, encode(result instanceof Uint8Array ? decodeInput(result, null) : result)];
      }
      output = encodeOutput(result);
    } catch (err) {
      if (!(err instanceof Failure) || !logs) throw err;
      return [err.status, JSON.stringify({ error: err.message, logs: logs.text() })];
    }
    return [200, outputReply(output, logs.text())];
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

const ROUTES = { '/init': 'POST', '/run': 'POST', '/health': 'GET' };

function reply(res, status, body) {
  const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
  res.end(data);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Failure(413, `body over ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function dispatch(runtime, req) {
  const route = (req.url || '').split('?', 1)[0];
  if (!(route in ROUTES)) throw new Failure(404, `no route ${route}: /init, /run and /health are`);
  if (req.method !== ROUTES[route]) throw new Failure(405, `${route} takes ${ROUTES[route]}`);
  if (route === '/health') return [200, '{"ok":true}'];
  const raw = await readBody(req);
  let body = null;
  if (raw.length) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new Failure(400, `the body is not JSON: ${err.message}`);
    }
  }
  if (route === '/init') return runtime.init(body);
  const flag = req.headers['x-faasflow-logs'];
  return runtime.run(body, flag === '1' || flag === 'true');
}

function serve(runtime) {
  const server = http.createServer((req, res) => {
    dispatch(runtime, req).then(
      ([status, body]) => reply(res, status, body),
      (err) => {
        if (err instanceof Failure) return reply(res, err.status, { error: err.message });
        process.stderr.write(`faasflow runtime: ${err && err.stack ? err.stack : err}\n`);
        return reply(res, 500, { error: `runtime error: ${describe(err)}` });
      },
    );
  });
  server.keepAliveTimeout = 0; // the pool keeps its connections as long as it likes
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  const port = process.env.FAASFLOW_RUNTIME_PORT;
  let where;
  const ready = () => process.stderr.write(`faasflow runtime (node) listening on ${where}\n`);
  if (port) {
    where = `0.0.0.0:${port}`;
    server.on('connection', (sock) => sock.setNoDelay(true));
    server.listen(Number(port), '0.0.0.0', ready);
  } else {
    where = process.env.FAASFLOW_RUNTIME_SOCKET || DEFAULT_SOCKET;
    const staging = `${where}.${process.pid}.new`;
    fs.mkdirSync(path.dirname(where), { recursive: true });
    fs.rmSync(staging, { force: true });
    server.listen(staging, () => {
      fs.chmodSync(staging, 0o666); // the host side connects as whichever user it runs as
      fs.renameSync(staging, where); // replaces a stale socket; appears only once listening
      ready();
    });
  }
  const stop = () => {
    if (!port) fs.rmSync(where, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop); // PID 1 gets no default action
  process.on('SIGINT', stop);
  // A handler's stray async error must not take the runtime down with it.
  process.on('uncaughtException', (err) => process.stderr.write(`uncaught: ${err && err.stack ? err.stack : err}\n`));
  process.on('unhandledRejection', (err) => process.stderr.write(`unhandled rejection: ${err && err.stack ? err.stack : err}\n`));
}

// ---------------------------------------------------------------------------------------------
// Entry point.

// One call: the event on stdin (decodeInput), the output on stdout (encodeOutput), the
// handler's prints and errors on stderr; exit 1 when it failed.
async function runCold() {
  const stderrWrite = process.stderr.write.bind(process.stderr);
  const restore = redirect({ write: (chunk, encoding) => stderrWrite(chunk, encoding) });
  const [handler] = preload(); // what it prints at load is log too: stdout is for the result
  restore();
  if (!handler) {
    process.exitCode = 1;
    return;
  }
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CE_') || k.startsWith('FAASFLOW_')));
  const deadline = process.env.FAASFLOW_DEADLINE_MS ? Number(process.env.FAASFLOW_DEADLINE_MS) : null;
  const context = makeContext(process.env.FAASFLOW_INVOCATION_ID || null, deadline, env);
  const value = decodeInput(fs.readFileSync(0), process.env.CE_DATACONTENTTYPE);
  let output;
  try {
    const result = await call(handler, value, context, { write: (chunk, encoding) => stderrWrite(chunk, encoding) });
    output = encodeOutput(result);
  } catch (err) {
    process.stderr.write(`${err instanceof Failure ? err.message : describe(err)}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(output, () => process.exit(0));
}

function preload() {
  try {
    return [loadFile(process.env.FAASFLOW_HANDLER, process.env.FAASFLOW_MAIN || 'handle'), null];
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    process.stderr.write(`faasflow runtime: ${err.message}\n`);
    return [null, err.message];
  }
}

function main(argv) {
  const mode = (argv.length ? argv[0].replace(/^-+/, '') : process.env.FAASFLOW_MODE || 'warm').toLowerCase();
  if (!['warm', 'cold'].includes(mode) || argv.length > 1) {
    process.stderr.write('usage: runtime.js [--warm | --cold]\n');
    process.exit(2);
  }
  if (mode === 'cold') {
    if (!process.env.FAASFLOW_HANDLER) {
      process.stderr.write('cold mode needs FAASFLOW_HANDLER=<file.js>\n');
      process.exit(2);
    }
    runCold();
    return;
  }
  serve(process.env.FAASFLOW_HANDLER ? new Runtime(...preload()) : new Runtime());
}

main(process.argv.slice(2));
