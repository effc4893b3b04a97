// Xen Orchestra's NBD client (@vates/nbd-client, as its backups use it)
// against xcpd's NBD server: reads a whole export in 64 KiB blocks, with
// one client and with MultiNbdClient's several connections, and prints
// the SHA-256 of each read as JSON. Usage (tests/xcpd/test_nbd.py):
//   node nbd_xo.mjs MODULES_DIR INFOS_JSON
// INFOS_JSON: VDI.get_nbd_info's records, port a number; cert dropped
// by the caller to ask for plain NBD.
import { createHash } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import path from 'node:path'

const [modules, infosJson] = process.argv.slice(2)
const infos = JSON.parse(infosJson)
const mod = f => pathToFileURL(path.join(modules, 'node_modules', '@vates', 'nbd-client', f)).href
const { default: NbdClient } = await import(mod('index.mjs'))
const { default: MultiNbdClient } = await import(mod('multi.mjs'))
const BLOCK = 64 * 1024

async function digest (client) {
  await client.connect()
  const size = Number(client.exportSize)
  const hash = createHash('sha256')
  for (let i = 0; i * BLOCK < size; i++) {
    hash.update(await client.readBlock(i, Math.min(BLOCK, size - i * BLOCK)))
  }
  await client.disconnect()
  return { size, sha256: hash.digest('hex') }
}

const timer = setTimeout(() => { console.error('timeout'); process.exit(2) }, 120000)
try {
  const single = await digest(new NbdClient(infos[0], { readBlockRetries: 1, reconnectRetry: 0 }))
  const multi = await digest(new MultiNbdClient(infos, { nbdConcurrency: 4 }))
  console.log(JSON.stringify({ single, multi }))
  clearTimeout(timer)
} catch (err) {
  console.error(err)
  process.exit(1)
}
