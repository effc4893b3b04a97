// Xen Orchestra's client (npm xen-api) against xcpd, one transport per run.
// Run by interop_xo.py; environment: XEN_API_MODULE (path of xen-api's
// index.mjs), XAPI_URL, XO_TRANSPORT (json-rpc | xml-rpc | auto),
// XO_USER, XO_PASS, VM_A, VM_B (name labels of two halted VMs).
// Prints one "PASS: ..." or "FAIL: ..." line per check.
import assert from 'node:assert/strict'
import { pathToFileURL } from 'node:url'
import { checker, withTimeout } from './xo_check.mjs'

const { createClient } = await import(pathToFileURL(process.env.XEN_API_MODULE).href)

const url = process.env.XAPI_URL
const transport = process.env.XO_TRANSPORT
const tag = `[${transport} ${url.split(':')[0]}] `
const { check, finish } = checker(tag)
const show = v => {
  try {
    return JSON.stringify(v)?.slice(0, 300)
  } catch {
    return String(v)
  }
}

const xapi = createClient({
  url,
  auth: { user: process.env.XO_USER, password: process.env.XO_PASS },
  allowUnauthorized: true,
  transport,
  callTimeout: 30e3,
  eventPollDelay: 2e3,
})

// Record every HTTP request path the client sends (undici dispatcher).
const paths = []
{
  const d = xapi._undiciDispatcher
  const dispatch = d.dispatch.bind(d)
  d.dispatch = (opts, handler) => {
    paths.push(opts.path)
    return dispatch(opts, handler)
  }
}
// Record every XenAPI method the client calls (its transport function).
const methods = []
const longPolls = [] // event.from calls: { ms, events } or { ms, error }
{
  const t = xapi._transport
  xapi._transport = (method, args) => {
    methods.push(method)
    const p = t(method, args)
    if (method === 'event.from') {
      const t0 = Date.now()
      p.then(
        r => longPolls.push({ ms: Date.now() - t0, events: r?.events?.length }),
        e => longPolls.push({ ms: Date.now() - t0, error: e?.code ?? e?.message })
      )
    }
    return p
  }
}
const count = m => methods.filter(x => x === m).length
const eventErrors = []
xapi.on('eventFetchingError', e => {
  eventErrors.push(e)
  console.log('  event.from error: ' + (e?.code ?? e))
})

// Resolves when an 'update' of the objects cache shows ref with pred true.
function waitUpdate(ref, pred, ms, what) {
  let onUpdate
  const p = new Promise(resolve => {
    onUpdate = objects => {
      for (const o of Object.values(objects)) {
        if (o !== undefined && o.$ref === ref && pred(o)) resolve(o)
      }
    }
    xapi.objects.on('update', onUpdate)
  })
  return withTimeout(p, ms, what).finally(() => xapi.objects.removeListener('update', onUpdate))
}

async function step(what, fn) {
  const t0 = Date.now()
  try {
    return await fn()
  } catch (e) {
    check(false, what, `${e?.code ?? ''} ${e?.message ?? e} ${e?.params ? show(e.params) : ''}`)
    return undefined
  } finally {
    const ms = Date.now() - t0
    if (ms > 1000) console.log(`  (${what}: ${ms} ms)`)
  }
}
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const idle = Number(process.env.XO_IDLE_S ?? 0)

const isInt = x => typeof x === 'number' && Number.isInteger(x)
const isDecimal = x => typeof x === 'string' && /^\d+$/.test(x)
const xml = transport === 'xml-rpc'

try {
  await step('connect', async () => {
    await withTimeout(xapi.connect(), 15e3, 'connect')
    check(xapi.status === 'connected', 'connect (login, pool.get_all_records, system.listMethods)')
    check(typeof xapi.sessionId === 'string' && xapi.sessionId.startsWith('OpaqueRef:'), 'session ref', show(xapi.sessionId))
    check(xapi.pool !== undefined && xapi.pool.$type === 'pool', 'xapi.pool is the pool record', show(xapi.pool?.$type))
  })
  await step('initial fetch', async () => {
    await withTimeout(xapi.objectsFetched, 30e3, 'objectsFetched')
    check(true, 'objectsFetched (event.inject, <Class>.get_all_records)')
  })

  const all = Object.values(xapi.objects.all)
  const byType = t => all.filter(o => o.$type === t)
  check(byType('pool').length === 1, 'cache holds one pool', show(byType('pool').length))
  check(byType('host').length === 1, 'cache holds the host', show(byType('host').length))
  check(byType('SR').length >= 1 && byType('network').length >= 1 && byType('VBD').length >= 1,
    'cache holds SRs, networks, VBDs', show([byType('SR').length, byType('network').length, byType('VBD').length]))
  const vms = byType('VM')
  const A = vms.find(v => v.name_label === process.env.VM_A)
  const B = vms.find(v => v.name_label === process.env.VM_B)
  check(A !== undefined && B !== undefined, 'cache holds the test VMs', show(vms.map(v => v.name_label)))
  check(vms.some(v => v.is_control_domain === true), 'cache holds the control domain')
  const host = byType('host')[0]
  if (idle > 0 && A !== undefined && B !== undefined) {
    // Stay connected and idle past event.from's 60.1 s timeout: the server
    // must answer the long poll (empty) before the client's 66 s limit and
    // keep delivering events afterwards.
    await step('idle', async () => {
      const t0 = Date.now()
      await sleep(idle * 1e3)
      check(eventErrors.length === 0, `no event.from error while idle for ${idle} s`,
        show(eventErrors.map(e => e?.code ?? e?.message ?? String(e))))
      const full = longPolls.filter(p => p.ms >= 59e3)
      check(full.length >= 1 && full.every(p => p.events === 0 && p.ms < 66e3),
        'an event.from with nothing to report returned empty at its 60.1 s timeout (before the client\'s 66 s)',
        show(longPolls))
      const seen = waitUpdate(B.$ref, o => o.name_description === 'after idle', 5e3, 'update after idle')
      await xapi.call('VM.set_name_description', B.$ref, 'after idle')
      await seen
      check(true, 'a change after the idle period arrives as an event within 5 s')
    })
  } else if (A !== undefined && B !== undefined) {
    check(A.power_state === 'Halted' && B.power_state === 'Halted', 'test VMs Halted', show([A.power_state, B.power_state]))
    // XML-RPC carries ints as strings, JSON-RPC as numbers.
    const ms = A.memory_static_max
    check(xml ? isDecimal(ms) : isInt(ms), `memory_static_max is ${xml ? 'a decimal string' : 'a JSON number'}`, show(ms))
    check(Number(ms) >= 1 << 20, 'memory_static_max plausible', show(ms))
    check(xml ? isDecimal(A.VCPUs_max) : isInt(A.VCPUs_max), 'VCPUs_max typed like memory', show(A.VCPUs_max))
    check(A.is_a_template === false && A.is_control_domain === false, 'booleans are booleans', show([A.is_a_template, A.is_control_domain]))
    check(Array.isArray(A.VBDs) && A.VBDs.every(r => r.startsWith('OpaqueRef:')), 'VBDs is an array of refs', show(A.VBDs))
    check(typeof A.other_config === 'object' && !Array.isArray(A.other_config), 'other_config is an object', show(A.other_config))
    check(typeof A.uuid === 'string' && A.$id === A.uuid, 'objects keyed by uuid', show(A.$id))
    check(A.$ref.startsWith('OpaqueRef:') && xapi.getObjectByRef(A.$ref) === A, 'getObjectByRef')
    check(typeof host?.memory_overhead !== 'undefined' && typeof host.API_version_major !== 'undefined',
      'host record fields present', show(Object.keys(host ?? {}).slice(0, 10)))

    // direct call
    await step('VM.get_all_records', async () => {
      const recs = await xapi.call('VM.get_all_records')
      check(typeof recs === 'object' && recs[A.$ref]?.name_label === A.name_label, 'VM.get_all_records over RPC')
    })

    // Async.VM.clone: the task result is a ref (task.result <value>OpaqueRef:..</value>)
    await step('Async.VM.clone', async () => {
      const ref = await withTimeout(xapi.callAsync('VM.clone', A.$ref, `${process.env.VM_A}-clone`), 30e3, 'Async.VM.clone')
      check(typeof ref === 'string' && ref.startsWith('OpaqueRef:'), 'callAsync(VM.clone) resolves to the new VM ref', show(ref))
      const name = await xapi.call('VM.get_name_label', ref)
      check(name === `${process.env.VM_A}-clone`, 'clone ref is valid', show(name))
    })

    // sync start; the power_state change arrives as an 'update' event
    await step('VM.start', async () => {
      const seen = waitUpdate(A.$ref, o => o.power_state === 'Running', 15e3, 'A Running update')
      const r = await xapi.call('VM.start', A.$ref, false, false)
      check(r === '', 'VM.start (sync) returns ""', show(r))
      const o = await seen
      check(o.power_state === 'Running', 'power_state Running arrives as an objects update (sync start)')
      check(xapi.getObjectByRef(A.$ref).power_state === 'Running', 'cache shows A Running')
    })

    // async start
    await step('Async.VM.start', async () => {
      const seen = waitUpdate(B.$ref, o => o.power_state === 'Running', 15e3, 'B Running update')
      const r = await withTimeout(xapi.callAsync('VM.start', B.$ref, false, false), 30e3, 'callAsync VM.start')
      check(r === '', 'callAsync(VM.start) resolves with "" (void task result)', show(r))
      await seen
      check(true, 'power_state Running arrives as an objects update (async start)')
    })

    // barrier
    await step('barrier', async () => {
      await withTimeout(xapi.barrier(), 15e3, 'barrier')
      check(true, 'barrier() (pool.add_to_other_config seen in a pool event)')
      const p = await withTimeout(xapi.barrier(xapi.pool.$ref), 15e3, 'barrier(ref)')
      check(p?.$type === 'pool', 'barrier(ref) returns the up-to-date object', show(p?.$type))
    })

    // error mapping, sync and through a failed task
    await step('errors', async () => {
      let e
      try {
        await xapi.call('VM.start', A.$ref, false, false)
      } catch (err) {
        e = err
      }
      check(e?.code === 'VM_BAD_POWER_STATE', 'sync error mapped: e.code VM_BAD_POWER_STATE', show([e?.code, e?.message]))
      check(Array.isArray(e?.params) && e.params[0] === A.$ref && e.params[1] === 'halted' && e.params[2] === 'running',
        'e.params [vm, halted, running]', show(e?.params))
      e = undefined
      try {
        await withTimeout(xapi.callAsync('VM.start', A.$ref, false, false), 30e3, 'failing callAsync')
      } catch (err) {
        e = err
      }
      check(e?.code === 'VM_BAD_POWER_STATE', 'failed task mapped: e.code from error_info', show([e?.code, e?.message]))
      e = undefined
      try {
        await xapi.call('VM.no_such_call', A.$ref)
      } catch (err) {
        e = err
      }
      check(e?.code === 'MESSAGE_METHOD_UNKNOWN', 'unknown method: e.code MESSAGE_METHOD_UNKNOWN', show([e?.code, e?.message]))
      e = undefined
      try {
        await xapi.call('VM.get_record', 'OpaqueRef:NULL')
      } catch (err) {
        e = err
      }
      check(e?.code === 'HANDLE_INVALID' && show(e?.params) === show(['VM', 'OpaqueRef:NULL']),
        'HANDLE_INVALID [VM, OpaqueRef:NULL]', show([e?.code, e?.params]))
    })

    // setters through the cached object
    await step('set_name_description', async () => {
      const seen = waitUpdate(B.$ref, o => o.name_description === 'from xo', 15e3, 'B description update')
      await xapi.getObjectByRef(B.$ref).set_name_description('from xo')
      await seen
      check(true, 'object setter (VM.set_name_description) round-trips through events')
    })

    // the server forgets the session: the client logs in again and goes on
    await step('relogin', async () => {
      const old = xapi.sessionId
      // through the client's own transport, without its session handling
      await xapi._call('session.logout', [old])
      const rec = await xapi.call('VM.get_record', B.$ref)
      check(rec?.name_label === process.env.VM_B && xapi.sessionId !== old,
        'after the session is logged out server-side, the client logs in again (SESSION_INVALID)', show([rec?.name_label, xapi.sessionId !== old]))
      const seen = waitUpdate(B.$ref, o => o.name_description === 'after relogin', 20e3, 'update after relogin')
      await xapi.call('VM.set_name_description', B.$ref, 'after relogin')
      await seen
      check(true, 'event loop recovers after SESSION_INVALID')
    })
  }

  // valid_ref_counts.task must match the task add/del events, or the client
  // re-fetches every task after each event.from
  check(count('task.get_all_records') <= count('event.inject'),
    'valid_ref_counts.task consistent with task events (no task re-fetch)',
    show({ task_get_all_records: count('task.get_all_records'), event_inject: count('event.inject'), event_from: count('event.from') }))
  check(count('event.inject') >= 1 && count('event.from') >= 1, 'event loop used event.inject + event.from (not the legacy event.next)',
    show({ inject: count('event.inject'), from: count('event.from'), next: count('event.next') }))
  // transport used
  const bad = paths.filter(p => p !== (xml ? '/xmlrpc' : '/jsonrpc'))
  check(paths.length > 5 && bad.length === 0,
    transport === 'auto' ? 'auto used /jsonrpc only (no fallback to XML-RPC)' : `every request went to ${xml ? '/xmlrpc' : '/jsonrpc'}`,
    show({ n: paths.length, other: [...new Set(bad)] }))
  check(eventErrors.every(e => e?.code === 'SESSION_INVALID'), 'no event.from errors (other than the forced SESSION_INVALID)',
    show(eventErrors.map(e => e?.code ?? String(e))))
} catch (e) {
  check(false, 'unexpected exception', String(e?.stack ?? e))
} finally {
  await step('disconnect', async () => {
    await withTimeout(xapi.disconnect(), 10e3, 'disconnect')
    check(xapi.status === 'disconnected', 'disconnect')
  })
  finish()
}
