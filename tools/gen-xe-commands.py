#!/usr/bin/env python3
"""The state of every XAPI xe command in libxcp's xe, generated.

Inputs: tools/xapi-xe-commands.txt (XAPI's commands, transcribed by
tools/xe-transcribe.py: name, flags, parameters, the XenAPI calls behind
each, help), the model's messages (lib/libxcp/model/gen_model.c), the
messages the engine lists as unimplemented (lib/libxcp/engine/dispatch.c),
the static command table (cmd/xe/cmdtable.c) and the commands the built
xe lists (`xe help --all --minimal`, which adds the per-class ones).

Outputs:
  docs/xe-commands.md   every XAPI command: implemented, or not and why
  cmd/xe/cmd_xapi.c     XAPI's commands xe does not implement: name,
                        parameters, help, and the XenAPI error they fail
                        with (the missing call's NOT_IMPLEMENTED or
                        MESSAGE_METHOD_UNKNOWN), so they are not
                        "Unknown command" and `xe help <cmd>` knows them

Usage: gen-xe-commands.py SRCDIR XE OUTDIR   (writes OUTDIR/docs/...,
OUTDIR/cmd/xe/...); tests/xe/commands.sh checks the committed ones.
"""
import os
import re
import subprocess
import sys

# XAPI class names the wire spells in lower case (others as the Client
# module: VM_appliance, PVS_site, Cluster...).
LOWER = {'session', 'pool', 'host', 'task', 'event', 'message', 'network',
         'secret', 'subject', 'role', 'blob', 'console', 'user',
         'pool_patch', 'pool_update', 'host_cpu', 'host_metrics',
         'host_crashdump', 'tunnel', 'network_sriov', 'sdn_controller',
         'data_source', 'diagnostics', 'auth'}
# Calls every command may make that say nothing about the feature: the
# database: option's session, its logout.
IGNORED = {'session.logout', 'VDI.open_database'}
FLAGS = {'Standard': 'XE_CF_STANDARD', 'Vm_selectors': 'XE_CF_VMSEL',
         'Host_selectors': 'XE_CF_HOSTSEL', 'Sr_selectors': 'XE_CF_SRSEL'}


def read(path):
    with open(path) as f:
        return f.read()


def model(src):
    msgs = set(re.findall(r'^    \{"([A-Za-z_]+\.[A-Za-z_0-9]+)",',
                          read(src + '/lib/libxcp/model/gen_model.c'), re.M))
    d = read(src + '/lib/libxcp/engine/dispatch.c')
    blk = d[d.index('unimplemented[] = {'):]
    blk = blk[:blk.index('NULL};')]
    return msgs, set(re.findall(r'"([^"]+)"', blk))


def xapi_commands(src):
    rows = []
    for line in read(src + '/tools/xapi-xe-commands.txt').split('\n'):
        if not line or line.startswith('#'):
            continue
        f = line.split('\t')
        sp = lambda s: [x for x in s.split(',') if x]
        rows.append({'name': f[0], 'flags': sp(f[1]), 'reqd': sp(f[2]),
                     'optn': sp(f[3]), 'calls': sp(f[4]),
                     'help': f[5].replace('\\n', '\n')})
    return rows


def ours(src, xe):
    tbl = read(src + '/cmd/xe/cmdtable.c')
    tbl = tbl[tbl.index('static const xe_cmd static_cmds[]'):]
    tbl = tbl[:tbl.index('\n};')]
    names = set(re.findall(r'^    \{"([a-z0-9-]+)",', tbl, re.M))
    env = dict(os.environ, XCP_HV=os.environ.get('XCP_HV', 'sim'))
    out = subprocess.run([xe, 'help', '--all', '--minimal'], env=env,
                         check=True, capture_output=True, text=True).stdout
    names |= set(x for x in out.strip().split(',') if x)
    names.add('help')
    return names


def wire(msgs, call):
    """XAPI's Client.Class.msg as the wire names it, and its state."""
    cls, msg = call.split('.', 1)
    ours_cls = {m.split('.')[0].lower(): m.split('.')[0] for m in msgs}
    c = ours_cls.get(cls.lower())
    if c is None:
        c = cls.lower() if cls.lower() in LOWER else cls
        return c + '.' + msg, 'noclass'
    w = c + '.' + msg
    return w, ('ok' if w in IGNORED else 'nomsg' if w not in msgs else None)


# Commands whose calls libxcp has but whose data goes through one of
# XAPI's HTTP handlers that xcpd does not serve: the handler, and why.
HTTP = {
    'audit-log-get': ('/audit_log', 'xcpd keeps no audit log (its log '
                      'goes to stderr or syslog)'),
    'host-get-system-status': ('/system-status', 'no system status '
                               'report collector'),
    'host-logs-download': ('/host_logs_download', 'xcpd writes no log '
                           'files (stderr or syslog)'),
    'pool-restore-database': ('/pool/xmldbdump', 'no loader of XAPI\'s '
                              'database XML into libxcp\'s database yet '
                              '(host-backup/host-restore restore a '
                              'host\'s database)'),
}


def classify(cmd, msgs, unimpl):
    """(call, error, reason) for a command xe lacks."""
    if cmd['name'] in HTTP:
        path, why = HTTP[cmd['name']]
        return (path, 'NOT_IMPLEMENTED',
                'needs XAPI\'s HTTP handler %s, which xcpd does not serve: '
                '%s' % (path, why))
    bad = []
    for call in cmd['calls']:
        w, st = wire(msgs, call)
        if st is None:
            st = 'unimpl' if w in unimpl else 'ok'
        if st != 'ok':
            bad.append((('unimpl', 'nomsg', 'noclass').index(st), w, st))
    if not bad:
        return ('xe ' + cmd['name'], 'NOT_IMPLEMENTED',
                'the calls exist; the xe command is not written yet')
    _, w, st = sorted(bad)[0]
    cls = w.split('.')[0]
    if st == 'unimpl':
        why = '%s is in the model, not implemented' % w
        err = 'NOT_IMPLEMENTED'
    elif st == 'nomsg':
        why = 'no %s in libxcp\'s model' % w
        err = 'MESSAGE_METHOD_UNKNOWN'
    else:
        why = 'no %s class in libxcp\'s model' % cls
        err = 'MESSAGE_METHOD_UNKNOWN'
    return w, err, why


def cstr(s):
    return '"%s"' % s.replace('\\', '\\\\').replace('"', '\\"') \
        .replace('\n', '\\n')


def clist(items):
    if not items:
        return 'L0'
    return 'L(' + ', '.join(cstr(x) for x in items) + ')'


def gen_c(missing):
    out = ['/* Generated by tools/gen-xe-commands.py from',
           ' * tools/xapi-xe-commands.txt: do not edit. XAPI\'s xe commands',
           ' * libxcp\'s xe does not implement, with the XenAPI error each',
           ' * fails with. */',
           '#include "cmds.h"', '',
           '#define L(...) ((const char *const[]){__VA_ARGS__, NULL})',
           '#define L0 ((const char *const[]){NULL})', '',
           'const xe_xapi_cmd xe_xapi_cmds[] = {']
    for cmd, (call, err, _) in missing:
        flags = [FLAGS[f] for f in cmd['flags'] if f in FLAGS]
        flags.append('XE_CF_HIDDEN')
        out.append('    {{%s, %s, %s,\n      %s,\n      %s, xe_unsupported},'
                   '\n     %s, %s},' % (
                       cstr(cmd['name']), clist(cmd['reqd']),
                       clist(cmd['optn']), cstr(cmd['help']),
                       ' | '.join(flags), cstr(call), cstr(err)))
    out += ['};', '',
            'const size_t xe_n_xapi_cmds = '
            'sizeof(xe_xapi_cmds) / sizeof(xe_xapi_cmds[0]);', '']
    return '\n'.join(out)


def gen_md(cmds, done, missing):
    why = {c['name']: r for c, r in missing}
    n_done = sum(1 for c in cmds if c['name'] in done)
    out = ['# XAPI\'s xe commands in libxcp', '',
           'Generated by `tools/gen-xe-commands.py` (`make xe-commands`) from',
           'XAPI\'s command list (`tools/xapi-xe-commands.txt`, transcribed',
           'from xapi-project/xen-api by `tools/xe-transcribe.py`), libxcp\'s',
           'model and xe\'s command table; `tests/xe/commands.sh` checks it',
           'is current.', '',
           '%d of XAPI\'s %d commands are implemented. The others are known'
           % (n_done, len(cmds)),
           'to `xe` (`xe help <command>` shows XAPI\'s parameters and text)',
           'and fail with the XenAPI error of the call libxcp lacks:',
           '`NOT_IMPLEMENTED` for a message of the model not implemented yet,',
           '`MESSAGE_METHOD_UNKNOWN` for one outside the model.', '',
           '| command | state | why / error |', '|---|---|---|']
    for c in cmds:
        if c['name'] in done:
            out.append('| `%s` | implemented | |' % c['name'])
        else:
            call, err, reason = why[c['name']]
            out.append('| `%s` | not supported | %s (`%s`: %s) |'
                       % (c['name'], reason, err, call))
    out.append('')
    return '\n'.join(out)


def main():
    src, xe, outdir = sys.argv[1:4]
    msgs, unimpl = model(src)
    cmds = xapi_commands(src)
    done = ours(src, xe)
    missing = [(c, classify(c, msgs, unimpl)) for c in cmds
               if c['name'] not in done]
    for rel, text in (('docs/xe-commands.md', gen_md(cmds, done, missing)),
                      ('cmd/xe/cmd_xapi.c', gen_c(missing))):
        path = os.path.join(outdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
