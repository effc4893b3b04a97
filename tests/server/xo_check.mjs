// What the scripts run with Node (Xen Orchestra's npm clients against
// xcpd) share: one "PASS: ..." or "FAIL: ..." line per check, counted;
// the closing count and exit status; a promise raced against a timeout;
// a stream read whole.

// The checks of one run, each line prefixed with tag.
export function checker (tag) {
  const c = { passed: 0, failed: 0 }
  c.check = (cond, what, detail = '') => {
    if (cond) {
      c.passed++
      console.log('PASS: ' + tag + what)
    } else {
      c.failed++
      console.log('FAIL: ' + tag + what + (detail ? ' -- ' + detail : ''))
    }
    return cond
  }
  // The count, then the exit: 1 when any check failed or none ran.
  c.finish = () => {
    console.log(`${tag}${c.passed} passed, ${c.failed} failed`)
    process.exit(c.failed === 0 && c.passed > 0 ? 0 : 1)
  }
  return c
}

export const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout (' + ms + ' ms): ' + what)), ms))])

export async function readAll (stream) {
  const parts = []
  for await (const p of stream) parts.push(p)
  return Buffer.concat(parts)
}
