// Xen Orchestra's client (npm xen-api) moving VMs through xcpd as XO does
// (@xen-orchestra/xapi's VM_import/VM_export): getResource('/export/',
// {query: {ref, use_compression}, task}) and putResource(stream,
// '/import/', {query: {sr_id}, task}), the task's result naming the new
// VM. Run by xva_xo.py; environment: XEN_API_MODULE, XAPI_URL, XO_USER,
// XO_PASS, VM_UUID (a halted VM with a disk). Prints one "PASS: ..." or
// "FAIL: ..." per check.
import { Readable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { checker, withTimeout, readAll } from './xo_check.mjs'

const { createClient } = await import(pathToFileURL(process.env.XEN_API_MODULE).href)

const url = process.env.XAPI_URL
const tag = `[${url.split(':')[0]}] `
const { check, finish } = checker(tag)


async function step(what, fn) {
  try {
    await withTimeout(fn(), 120e3, what)
  } catch (e) {
    check(false, what, String(e?.stack ?? e).slice(0, 600))
  }
}

const xapi = createClient({
  url,
  auth: { user: process.env.XO_USER, password: process.env.XO_PASS },
  allowUnauthorized: true,
  callTimeout: 30e3,
})
const opaque = s => String(s).match(/OpaqueRef:[0-9a-f-]+/)?.[0]

try {
  await xapi.connect()
  const vm = await xapi.call('VM.get_by_uuid', process.env.VM_UUID)
  const sr = (await xapi.call('SR.get_all'))[0]
  for (const compression of ['zstd', 'false']) {
    let xva
    await step('getResource /export/ ' + compression, async () => {
      const res = await xapi.getResource('/export/', { query: { ref: vm, use_compression: compression }, task: true })
      xva = await readAll(res.body)
      const magic = xva.subarray(0, 4).toString('hex')
      check(compression === 'zstd' ? magic === '28b52ffd' : xva.subarray(0, 7).toString() === 'ova.xml',
        'export ' + compression + ': the archive', magic)
    })
    if (xva === undefined) continue
    await step('putResource /import/ ' + compression, async () => {
      const pieces = []
      for (let o = 0; o < xva.length; o += 1 << 16) pieces.push(xva.subarray(o, o + (1 << 16)))
      const result = await xapi.putResource(Readable.from(pieces), '/import/', { query: { sr_id: sr }, task: true })
      const ref = opaque(result)
      check(ref !== undefined, 'import ' + compression + ': the task result names the VM', String(result))
      if (ref !== undefined) {
        check(await xapi.call('VM.get_name_label', ref) === await xapi.call('VM.get_name_label', vm),
          'import ' + compression + ': the VM is the exported one')
        check((await xapi.call('VM.get_VBDs', ref)).length === (await xapi.call('VM.get_VBDs', vm)).length,
          'import ' + compression + ': with its disks')
      }
    })
  }
  await step('putResource of garbage', async () => {
    const before = (await xapi.call('VM.get_all')).length
    let err
    try {
      await xapi.putResource(Buffer.from('not an xva'.repeat(100)), '/import/', { query: { sr_id: sr }, task: true })
    } catch (e) {
      err = e
    }
    // As XAPI: 200 (the body had a length or not), then the task fails,
    // and putResource rejects with the task's error.
    check(err?.code === 'IMPORT_ERROR', 'garbage: putResource rejects with the task\'s IMPORT_ERROR', String(err?.code ?? err))
    check((await xapi.call('VM.get_all')).length === before, 'garbage: no VM left')
  })
} catch (e) {
  check(false, 'scenario', String(e?.stack ?? e))
} finally {
  try {
    await withTimeout(xapi.disconnect(), 10e3, 'disconnect')
  } catch {}
}
finish()
