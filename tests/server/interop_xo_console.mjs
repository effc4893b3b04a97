// Xen Orchestra's console proxy against xcpd: what xo-server's
// proxy-console does with a VM console record, step for step, using the
// same npm packages (xen-api for the session, ws for the WebSocket).
// Run by interop_xo.py; environment: XEN_API_MODULE, WS_MODULE (path of
// ws's wrapper.mjs), XAPI_URL (https://host:port), XO_USER, XO_PASS,
// VM_HVM (name label of a halted HVM VM: its console speaks RFB).
// Prints one "PASS: ..." or "FAIL: ..." line per check.
//
// XO takes the record's location, switches it to wss: and opens a
// WebSocket with the "binary" subprotocol and the session in a cookie;
// when that fails it falls back to a TLS CONNECT over HTTP/1.0 (its
// "legacy" path, for older hosts). Both must reach the VM's RFB server.
// The location names the host's address and XAPI's port (443); the test
// daemon listens elsewhere, so only the host:port is swapped for it.
import tls from 'node:tls'
import { pathToFileURL } from 'node:url'
import { checker, withTimeout } from './xo_check.mjs'

const load = async p => import(pathToFileURL(p).href)
const { createClient } = await load(process.env.XEN_API_MODULE)
const { default: WebSocket } = await load(process.env.WS_MODULE)

const base = new URL(process.env.XAPI_URL)
const { check, finish } = checker('[console] ')
const RFB = 'RFB 003.008\n'

// Opens XO's WebSocket to url with sessionId; resolves with the first
// message and the socket, rejects when the server refuses.
function wsFirstMessage(url, sessionId) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], {
      rejectUnauthorized: false,
      headers: { cookie: `session_id=${sessionId}` },
    })
    ws.once('error', reject)
    ws.once('unexpected-response', (req, res) => reject(new Error('HTTP ' + res.statusCode)))
    ws.once('message', data => resolve({ ws, data: Buffer.from(data) }))
  })
}

// XO's legacy path: TLS, "CONNECT <path> HTTP/1.0" with the session
// cookie; resolves with the status line and what followed the headers.
function legacyConnect(url, sessionId) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const s = tls.connect({ host: base.hostname, port: base.port, rejectUnauthorized: false }, () => {
      s.write([`CONNECT ${url.pathname + url.search} HTTP/1.0`, `Host: ${url.hostname}`,
        `Cookie: session_id=${sessionId}`, '', ''].join('\r\n'))
    })
    s.on('error', reject)
    s.on('data', d => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const status = buf.subarray(0, buf.indexOf('\r\n')).toString()
      const rest = buf.subarray(end + 4)
      if (!/ 200 /.test(status) || rest.length >= RFB.length) {
        s.destroy()
        resolve({ status, rest: rest.toString() })
      }
    })
    s.on('end', () => resolve({ status: buf.toString().split('\r\n')[0], rest: '' }))
  })
}

const xapi = createClient({
  url: process.env.XAPI_URL,
  auth: { user: process.env.XO_USER, password: process.env.XO_PASS },
  allowUnauthorized: true,
})
try {
  await withTimeout(xapi.connect(), 30e3, 'connect')
  const sid = xapi.sessionId
  const [vm] = await xapi.call('VM.get_by_name_label', process.env.VM_HVM)
  await xapi.call('VM.start', vm, false, false)
  let rec, ref
  for (const c of await xapi.call('VM.get_consoles', vm)) {
    const r = await xapi.call('console.get_record', c)
    if (r.protocol === 'rfb') [rec, ref] = [r, c]
  }
  if (check(rec !== undefined, 'a running HVM VM has an rfb console record')) {
    const loc = new URL(rec.location)
    check(loc.protocol === 'https:' && loc.hostname !== '' && loc.pathname === '/console' &&
      (loc.searchParams.get('uuid') === rec.uuid || loc.searchParams.get('ref') === ref),
    'its location is https://<host>/console?ref=<its ref> (or ?uuid=<its uuid>), as XAPI writes them',
    rec.location)
    const url = new URL(rec.location)
    url.protocol = 'wss:'
    url.host = base.host
    try {
      const { ws, data } = await withTimeout(wsFirstMessage(url, sid), 20e3, 'WebSocket')
      check(data.toString() === RFB, 'WebSocket (binary subprotocol, session cookie) opens on RFB 3.8',
        JSON.stringify(data.toString()))
      check(ws.protocol === 'binary', 'the server agrees to the binary subprotocol', ws.protocol)
      // the client's half: version, then the server offers its security types
      const next = new Promise(resolve => ws.once('message', d => resolve(Buffer.from(d))))
      ws.send(Buffer.from(RFB), { binary: true })
      const types = await withTimeout(next, 20e3, 'security types')
      check(types.length >= 2 && types[0] === types.length - 1 && types.subarray(1).includes(1),
        'the client\'s ProtocolVersion is relayed; the server offers security None', types.toString('hex'))
      ws.close()
    } catch (e) {
      check(false, 'WebSocket (binary subprotocol, session cookie) opens on RFB 3.8', String(e))
    }
    try {
      await withTimeout(wsFirstMessage(url, 'OpaqueRef:not-a-session'), 20e3, 'WebSocket')
      check(false, 'a WebSocket with a bad session is refused')
    } catch (e) {
      check(true, 'a WebSocket with a bad session is refused (' + e.message + ')')
    }
    try {
      const { status, rest } = await withTimeout(legacyConnect(url, sid), 20e3, 'CONNECT')
      check(/^HTTP\/1\.[01] 200 /.test(status), 'legacy TLS CONNECT (HTTP/1.0, cookie) answers 200', status)
      check(rest.startsWith(RFB), 'then the RFB server speaks', JSON.stringify(rest))
    } catch (e) {
      check(false, 'legacy TLS CONNECT (HTTP/1.0, cookie) answers 200', String(e))
    }
  }
  await xapi.call('VM.hard_shutdown', vm)
} catch (e) {
  check(false, 'scenario ran to the end', String(e?.stack ?? e))
} finally {
  await xapi.disconnect().catch(() => {})
}
finish()
