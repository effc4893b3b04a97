// Xen Orchestra's client (npm xen-api) moving VDIs through xcpd as XO does:
// putResource (a Buffer of known length, and a stream of unknown length:
// XO's made-up content-length, its empty probe first) and getResource
// (raw and vhd), and a delta export (base=) as XO's delta backups take
// one, applied over a copy of the base. Run by transfer_xo.py; environment: XEN_API_MODULE,
// XAPI_URL, XO_USER, XO_PASS, OUT_DIR (where the exported VHD and the
// data go, for qemu-img). Prints one "PASS: ..." or "FAIL: ..." per check.
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { checker, withTimeout, readAll } from './xo_check.mjs'

const { createClient } = await import(pathToFileURL(process.env.XEN_API_MODULE).href)

const url = process.env.XAPI_URL
const tag = `[${url.split(':')[0]}] `
const MiB = 1 << 20
const SIZE = 8 * MiB
const { check, finish } = checker(tag)
const sha = b => createHash('sha256').update(b).digest('hex')


const xapi = createClient({
  url,
  auth: { user: process.env.XO_USER, password: process.env.XO_PASS },
  allowUnauthorized: true,
  callTimeout: 30e3,
})

function pattern() {
  const b = Buffer.alloc(SIZE)
  randomBytes(MiB).copy(b, 0)
  randomBytes(MiB).copy(b, 5 * MiB)
  return b
}

async function newVdi(sr, name) {
  return xapi.call('VDI.create', {
    name_label: name, name_description: '', SR: sr, virtual_size: String(SIZE), type: 'user',
    sharable: false, read_only: false, other_config: {}, xenstore_data: {}, sm_config: {}, tags: [],
  })
}

async function exportRaw(vdi) {
  const res = await xapi.getResource('/export_raw_vdi', { query: { format: 'raw', vdi } })
  return readAll(res.body)
}

async function step(what, fn) {
  try {
    await withTimeout(fn(), 90e3, what)
  } catch (e) {
    check(false, what, String(e?.stack ?? e).slice(0, 600))
  }
}

try {
  await xapi.connect()
  const sr = (await xapi.call('SR.get_all'))[0]
  const data = pattern()

  await step('putResource of a Buffer (known length)', async () => {
    const vdi = await newVdi(sr, 'xo-buffer')
    const result = await xapi.putResource(data, '/import_raw_vdi', { query: { format: 'raw', vdi } })
    check(String(result).includes(vdi) || result === vdi, 'putResource: the task result is the VDI', String(result))
    check(sha(await exportRaw(vdi)) === sha(data), 'getResource raw: the VDI holds the Buffer')
  })

  await step('putResource of a stream of unknown length', async () => {
    const vdi = await newVdi(sr, 'xo-stream')
    const pieces = []
    for (let o = 0; o < SIZE; o += MiB) pieces.push(data.subarray(o, o + MiB))
    await xapi.putResource(Readable.from(pieces), '/import_raw_vdi', { query: { format: 'raw', vdi } })
    check(sha(await exportRaw(vdi)) === sha(data), 'unknown length: the VDI holds the stream')
  })

  await step('getResource vhd, then putResource of it', async () => {
    const vdi = await newVdi(sr, 'xo-vhd')
    await xapi.putResource(data, '/import_raw_vdi', { query: { format: 'raw', vdi } })
    const res = await xapi.getResource('/export_raw_vdi', { query: { format: 'vhd', vdi } })
    check(res.headers['content-type'] === 'application/vhd', 'getResource vhd: content type', res.headers['content-type'])
    const vhd = await readAll(res.body)
    check(vhd.length < SIZE, 'getResource vhd: empty blocks not sent', String(vhd.length))
    writeFileSync(process.env.OUT_DIR + '/xo.vhd', vhd)
    writeFileSync(process.env.OUT_DIR + '/xo.raw', data)
    const back = await newVdi(sr, 'xo-vhd-back')
    await xapi.putResource(vhd, '/import_raw_vdi', { query: { format: 'vhd', vdi: back } })
    check(sha(await exportRaw(back)) === sha(data), 'putResource vhd: the VDI holds the data')
  })

  await step('delta export (base=) as XO\'s delta backups', async () => {
    const vdi = await newVdi(sr, 'xo-delta')
    await xapi.putResource(data, '/import_raw_vdi', { query: { format: 'raw', vdi } })
    await xapi.call('VDI.enable_cbt', vdi)
    const s1 = await xapi.call('VDI.snapshot', vdi, {})
    // 1 MiB rewritten at 2 MiB, in XAPI's chunk frames
    const later = Buffer.from(data)
    randomBytes(MiB).copy(later, 2 * MiB)
    const head = Buffer.alloc(12)
    head.writeBigUInt64LE(BigInt(2 * MiB), 0)
    head.writeUInt32LE(MiB, 8)
    const frames = Buffer.concat([head, later.subarray(2 * MiB, 3 * MiB), Buffer.alloc(12)])
    await xapi.putResource(frames, '/import_raw_vdi', { query: { format: 'raw', vdi, chunked: 'true' } })
    const s2 = await xapi.call('VDI.snapshot', vdi, {})
    const res = await xapi.getResource('/export_raw_vdi', { query: { format: 'vhd', vdi: s2, base: s1 } })
    const delta = await readAll(res.body)
    check(delta.length <= 2 * MiB + 64 * 1024, 'delta: one 2 MiB block sent', String(delta.length))
    check(delta.readUInt32BE(delta.length - 512 + 60) === 4, 'delta: a differencing VHD')
    const s1uuid = await xapi.call('VDI.get_uuid', s1)
    check(delta.subarray(512 + 40, 512 + 56).toString('hex') === s1uuid.replace(/-/g, ''),
      'delta: its parent is the base')
    const copy = await xapi.call('VDI.clone', s1, {})
    await xapi.putResource(delta, '/import_raw_vdi', { query: { format: 'vhd', vdi: copy } })
    check(sha(await exportRaw(copy)) === sha(later), 'delta: applied over a copy of the base, the later snapshot')
  })

  await step('putResource into a VDI that does not exist', async () => {
    let err
    try {
      await xapi.putResource(data, '/import_raw_vdi', { query: { format: 'raw', vdi: 'OpaqueRef:nope' } })
    } catch (e) {
      err = e
    }
    check(err !== undefined, 'bad VDI: putResource rejects', String(err))
  })
} catch (e) {
  check(false, 'scenario', String(e?.stack ?? e))
} finally {
  try {
    await withTimeout(xapi.disconnect(), 10e3, 'disconnect')
  } catch {}
}
finish()
