# Data sources (api/metrics.c) through xe, as XAPI's cli_operations.ml
# prints them: the host's list (names, descriptions, units, bounds as
# OCaml's string_of_float), XAPI's errors for a missing data source or
# RRD, and forget/record. Values move with time: not printed here (the
# daemon tests and tests/api/test_data_sources.c check them).
# host-data-source-list is not here: max is infinity for unbounded data
# sources, which xe prints as "inf" embedded but "0." through the daemon,
# whose JSON-RPC sends non-finite floats as null (rpc/jsonrpc.c); the list
# is checked by tests/api/test_data_sources.c and tests/xcpd/metrics.sh.
H=$(xe host-list --minimal)
xe host-data-source-list host=nobody
xe host-data-source-query data-source=nosuch
xe host-data-source-record data-source=nosuch
xe host-data-source-forget data-source=nosuch
xe host-data-source-forget data-source=loadavg
xe host-data-source-record data-source=loadavg
xe host-data-source-query
V=$(xe vm-install template="Other install media" new-name-label=ds)
xe vm-data-source-list vm=ds
xe vm-data-source-query vm=ds data-source=memory
xe vm-data-source-record uuid=$V data-source=memory
xe vm-data-source-forget vm=ds data-source=memory
xe vm-data-source-list vm=nosuch
