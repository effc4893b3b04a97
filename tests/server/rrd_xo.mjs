// Xen Orchestra's stats poll (xo-server's xapi-stats: npm xen-api's
// getResource('/rrd_updates', { query: { cf: 'AVERAGE', host: 'true',
// interval, json: 'true', start } }), the body read as text and
// JSON.parse'd) against xcpd with a running VM. Run by rrd_xo.py;
// environment: XEN_API_MODULE, XAPI_URL, XO_USER, XO_PASS. Prints one
// "PASS: ..." or "FAIL: ..." per check.
import { pathToFileURL } from 'node:url'
import { checker, withTimeout, readAll } from './xo_check.mjs'

const { createClient } = await import(pathToFileURL(process.env.XEN_API_MODULE).href)
const url = process.env.XAPI_URL
const tag = `[${url.split(':')[0]}] `
const { check, finish } = checker(tag)
const xapi = createClient({
  url,
  auth: { user: process.env.XO_USER, password: process.env.XO_PASS },
  allowUnauthorized: true,
  callTimeout: 30e3,
})

async function poll (interval, start) {
  const res = await xapi.getResource('/rrd_updates', {
    query: { cf: 'AVERAGE', host: 'true', interval, json: 'true', start },
  })
  // XO reads the body whole, then JSON.parse
  return JSON.parse((await readAll(res.body ?? res)).toString())
}

try {
  await withTimeout(xapi.connect(), 30e3, 'connect')
  const host = (await xapi.call('host.get_all'))[0]
  const hostUuid = await xapi.call('host.get_uuid', host)
  const vms = await xapi.call('VM.get_all_records')
  const running = Object.values(vms).filter(v => v.power_state === 'Running' && !v.is_control_domain)
  check(running.length === 1, 'one running VM')
  const vmUuid = running[0].uuid
  const now = Math.floor(Date.now() / 1000)
  const json = await withTimeout(poll(5, now - 120), 30e3, 'rrd_updates')
  const { meta, data } = json
  check(Array.isArray(meta.legend) && +meta.columns === meta.legend.length, 'legend and columns agree')
  check(+meta.rows === data.length && data.length > 0, `rows agree (${data.length})`)
  check(+meta.step === 5, 'step 5')
  check(meta.legend.includes(`AVERAGE:host:${hostUuid}:cpu_avg`), 'host cpu_avg in legend')
  check(meta.legend.includes(`AVERAGE:vm:${vmUuid}:memory`), 'VM memory in legend')
  check(data.every(r => r.values.length === meta.legend.length), 'every row is as wide as the legend')
  const i = meta.legend.indexOf(`AVERAGE:host:${hostUuid}:memory_total_kib`)
  check(data.some(r => +r.values[i] > 0), 'memory_total_kib > 0 in some row')
  check(+data[0].t === +meta.end, 'newest row first, at end')
  // XO's next poll starts from the last end
  const next = await withTimeout(poll(5, +meta.end), 30e3, 'rrd_updates again')
  check(+next.meta.end >= +meta.end, 'a later poll does not go back')
  // the hourly view XO's graphs use (6 days: within the week the hourly
  // archive holds, whatever the second)
  const hourly = await withTimeout(poll(3600, now - 6 * 86400), 30e3, 'rrd_updates hourly')
  check(+hourly.meta.step === 3600, 'interval 3600: hourly archive')
} catch (e) {
  check(false, 'scenario', String(e?.stack ?? e).slice(0, 600))
}
await xapi.disconnect().catch(() => {})
finish()
