// Xen Orchestra's client (npm xen-api) connecting to a pool member first:
// it must follow HOST_IS_SLAVE to the coordinator by itself. Run by
// fwd_clients.py; environment: XEN_API_MODULE, XAPI_URL (the member's),
// XO_PASS. Prints "CONNECTED <url host> <pool master address>".
import { pathToFileURL } from 'node:url'

const { createClient } = await import(pathToFileURL(process.env.XEN_API_MODULE).href)
const xapi = createClient({
  url: process.env.XAPI_URL,
  auth: { user: 'root', password: process.env.XO_PASS },
  allowUnauthorized: true,
  transport: 'xml-rpc',
  callTimeout: 30e3,
})
try {
  await xapi.connect()
  const pool = (await xapi.call('pool.get_all'))[0]
  const master = await xapi.call('pool.get_master', pool)
  const address = await xapi.call('host.get_address', master)
  console.log(`CONNECTED ${xapi._url.hostname} ${address}`)
  await xapi.disconnect()
  process.exit(0)
} catch (e) {
  console.log(`ERROR ${e?.code ?? ''} ${JSON.stringify(e?.params ?? e?.message)}`)
  process.exit(1)
}
