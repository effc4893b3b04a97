#!/usr/bin/env python3
"""Transcribe XAPI's xe command list into tools/xapi-xe-commands.txt.

Reads a checkout of xapi-project/xen-api (ocaml/xapi-cli-server/
cli_frontend.ml for the static commands, cli_operations.ml for the
XenAPI calls behind each one and for the per-class generated commands,
records.ml for which param-* commands a class gets) and writes one line
per command:

    name <TAB> flags <TAB> reqd <TAB> optn <TAB> calls <TAB> help

lists comma-separated, calls as Class.message (the Client calls of the
implementation and of the cli_operations helpers it uses, one level
deep). Only names, parameters, flags and help texts are taken: the
interface, not XAPI's code. Run by hand when XAPI's list moves on:

    tools/xe-transcribe.py XEN_API_DIR > tools/xapi-xe-commands.txt
"""
import re
import sys


def tokens(text):
    """OCaml tokens: ('s', literal) / ('i', ident) / ('p', punct)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith('(*', i):
            depth = 0
            while i < n:
                if text.startswith('(*', i):
                    depth += 1
                    i += 2
                elif text.startswith('*)', i):
                    depth -= 1
                    i += 2
                    if depth == 0:
                        break
                else:
                    i += 1
        elif text.startswith('{|', i):
            j = text.index('|}', i)
            yield ('s', text[i + 2:j])
            i = j + 2
        elif c == '"':
            i += 1
            out = []
            while text[i] != '"':
                if text[i] == '\\':
                    e = text[i + 1]
                    if e == '\n':
                        i += 2
                        while text[i] in ' \t':
                            i += 1
                        continue
                    out.append({'n': '\n', 't': '\t', '"': '"',
                                '\\': '\\'}.get(e, '\\' + e))
                    i += 2
                else:
                    out.append(text[i])
                    i += 1
            i += 1
            yield ('s', ''.join(out))
        elif c.isalpha() or c == '_':
            j = i
            while j < n and (text[j].isalnum() or text[j] in '_.\''):
                j += 1
            yield ('i', text[i:j])
            i = j
        else:
            yield ('p', c)
            i += 1


def parse_table(src):
    start = src.index('let rec cmdtable_data')
    end = src.index('\n  ]\n', start)
    toks = list(tokens(src[start:end]))
    cmds = []
    k = 0
    while k < len(toks):
        if (toks[k] == ('p', '(') and toks[k + 1][0] == 's'
                and toks[k + 2] == ('p', ',') and toks[k + 3] == ('p', '{')):
            name = toks[k + 1][1]
            k += 4
            ent = {'name': name}
            fields = ('reqd', 'optn', 'help', 'implementation', 'flags')
            while toks[k] != ('p', '}'):
                if toks[k] == ('p', ';'):
                    k += 1
                field = toks[k][1]
                assert field in fields, (name, toks[k])
                k += 2
                expr = []
                depth = 0
                while depth > 0 or toks[k] not in (('p', ';'), ('p', '}')):
                    if toks[k] in (('p', '('), ('p', '[')):
                        depth += 1
                    elif toks[k] in (('p', ')'), ('p', ']')):
                        depth -= 1
                    expr.append(toks[k])
                    k += 1
                ent[field] = expr
            cmds.append(ent)
        k += 1
    return cmds


def fn_bodies(src):
    """Top-level (and module-level) let bindings of cli_operations.ml."""
    bodies = {}
    cur = mod = None
    for line in src.split('\n'):
        m = re.match(r'(?:let|and)(?: rec)? ([a-z_][A-Za-z0-9_\']*)', line)
        m2 = re.match(r'  let ([a-z_][A-Za-z0-9_\']*)', line)
        mm = re.match(r'module ([A-Za-z_]+) = struct', line)
        if m:
            cur = m.group(1)
        elif m2 and mod:
            cur = mod + '.' + m2.group(1)
        if mm:
            mod = mm.group(1)
        elif line == 'end':
            mod = None
        if cur:
            bodies.setdefault(cur, []).append(line)
    return {k: '\n'.join(v) for k, v in bodies.items()}



CALL = re.compile(r'Client\.(?:Async\.)?([A-Z][A-Za-z_]*)\.([a-z_A-Z0-9]+)')


def calls_of(fn, bodies, depth=2, seen=None):
    seen = set() if seen is None else seen
    if fn in seen or fn not in bodies:
        return []
    seen.add(fn)
    body = bodies[fn]
    out = ['%s.%s' % m for m in CALL.findall(body)]
    if depth > 0:
        prefix = fn.rsplit('.', 1)[0] + '.' if '.' in fn else ''
        for ident in set(re.findall(r'\b([a-z_][A-Za-z0-9_]*)\b', body)):
            for cand in (prefix + ident, ident):
                if cand != fn and cand in bodies:
                    out += calls_of(cand, bodies, depth - 1, seen)
                    break
    return out


def record_fields(rec_src, fn):
    m = re.search(r'^let %s rpc session_id .*?(?=^let )' % fn, rec_src,
                  re.S | re.M)
    body = m.group(0) if m else ''
    parts = body.split('make_field')[1:]
    fields = []
    for p in parts:
        nm = re.search(r'~name:"([^"]+)"', p)
        if not nm:
            continue
        has = lambda a: ('~' + a + ':') in p or re.search(
            r'~' + a + r'\b(?!:)', p) is not None
        fields.append({'name': nm.group(1),
                       'hidden': '~hidden:true' in p,
                       **{a: has(a) for a in
                          ('set', 'add_to_set', 'add_to_map', 'set_in_map',
                           'set_map', 'get_set', 'get_map')}})
    return fields


def main():
    root = sys.argv[1]
    rd = lambda p: open(root + '/ocaml/xapi-cli-server/' + p).read()
    front, ops, recs = rd('cli_frontend.ml'), rd('cli_operations.ml'), \
        rd('records.ml')
    bodies = fn_bodies(ops)
    rows = []
    for c in parse_table(front):
        lst = lambda ex: [v for t, v in ex if t == 's']
        help_ = ''.join(v for t, v in c['help'] if t == 's')
        impl = [v for t, v in c['implementation'] if t == 'i'
                and v.startswith('Cli_operations.')]
        fn = impl[0][len('Cli_operations.'):] if impl else ''
        calls = sorted(set(calls_of(fn, bodies))) if fn else []
        flags = [v for t, v in c['flags'] if t == 'i' and v[0].isupper()
                 and v != 'Deprecated']
        if any(v == 'Deprecated' for t, v in c['flags']):
            flags.append('Deprecated')
        rows.append((c['name'], flags, lst(c['reqd']), lst(c['optn']),
                     calls, help_))
    gen = re.findall(r'Client\.(\w+)\.\(\s*mk\s+\w+\s+\w+\s+(\w+)\s+"([a-z-]+)"',
                     ops[ops.index('let gen_cmds'):])
    for cls, recfn, cname in gen:
        fields = [f for f in record_fields(recs, recfn) if not f['hidden']]
        settable = any(f['set'] or f['add_to_map'] or f['set_in_map']
                       or f['set_map'] for f in fields)
        addable = any(f['add_to_set'] or f['add_to_map'] for f in fields)
        clearable = any(f['set'] or f['get_set'] or f['get_map']
                        for f in fields)
        ops_ = ['list', 'param-list', 'param-get']
        if settable:
            ops_.append('param-set')
        if addable:
            ops_ += ['param-add', 'param-remove']
        if clearable:
            ops_.append('param-clear')
        for op in ops_:
            call = {'list': 'get_all_records_where'}.get(op, 'get_by_uuid')
            rows.append((cname + '-' + op, ['Generated'], [], [],
                         ['%s.%s' % (cls, call)],
                         'Generated for the %s class.' % cname))
    print('# XAPI\'s xe commands, transcribed by tools/xe-transcribe.py')
    print('# from xapi-project/xen-api (cli_frontend.ml, cli_operations.ml,')
    print('# records.ml): name, flags, reqd, optn, API calls, help.')
    for r in sorted(rows):
        print('\t'.join([r[0], ','.join(r[1]), ','.join(r[2]),
                         ','.join(r[3]), ','.join(r[4]),
                         r[5].replace('\n', '\\n').replace('\t', ' ')]))


if __name__ == '__main__':
    main()
