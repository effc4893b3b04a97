/*
 * api/metrics.h - the engine's performance monitor (api/metrics.c): the
 * host's and running VMs' RRDs, sampled every 5 s from the hypervisor
 * driver's stats slot, kept in memory and written to <state dir>/rrd/
 * on a cadence, served to the data-source messages, /rrd_updates,
 * /host_rrd, /vm_rrd and /metrics.
 *
 * Locking: its own mutex, taken after the engine lock when both are held
 * (the sampler never takes the engine lock while holding it).
 */
#ifndef XCP_API_METRICS_H
#define XCP_API_METRICS_H

#include "../engine/engine.h"
#include "../metrics/rrd.h"

typedef struct xcp__metrics xcp__metrics;

/* Starts the monitor of an engine (its thread samples at once, then at
 * every 5 s boundary): host_uuid and dom0_uuid name the host's RRD and
 * domain 0's VM. NULL when out of memory or the driver has no stats. */
xcp__metrics *xcp__metrics_start(xcp_hv *hv, const char *state_dir,
                                 const char *host_uuid,
                                 const char *dom0_uuid, bool thread);
/*
 * Which SR holds each disk of a running VM, for the host's per-SR data
 * sources (XAPI's iostat plugin: io_throughput_read_<first 8 of the SR
 * uuid>, iops_read_..., ...): srs[i] gets the SR uuid of the disk the
 * guest sees as devs[i] ("" when none). Called from the sampling thread
 * when a VM's set of disks is new or changed, never with the monitor's
 * lock held, so it may take the engine's.
 */
typedef void (*xcp__metrics_sr_fn)(void *ctx, const char *vm_uuid, size_t n,
                                   const char *const *devs,
                                   char (*srs)[XCP_HV_UUID_LEN]);
/* Sets it (NULL: no per-SR data sources); from the next sample on. */
void xcp__metrics_set_sr_resolver(xcp__metrics *m, xcp__metrics_sr_fn fn,
                                  void *ctx);

/* Stops the thread and writes every RRD changed since its last write. */
void xcp__metrics_stop(xcp__metrics *m);

/* One sample now, as of wall-clock time t (tests, benchmarks; the thread
 * calls it with the real time). 0, or a negative errno from the driver. */
int xcp__metrics_sample(xcp__metrics *m, double t);
/* Writes the RRDs changed since their last write (each as a new file,
 * one sync for all, then renamed over the old ones): 0, or the first
 * negative errno (the others are logged). */
int xcp__metrics_flush(xcp__metrics *m);

/* Data-source messages. uuid: the host's or a VM's. Errors as XAPI:
 * INTERNAL_ERROR naming the missing RRD or data source. */
int xcp__metrics_data_sources(xcp__metrics *m, const char *uuid,
                              xcp_value *out);
int xcp__metrics_query(xcp__metrics *m, const char *uuid, const char *name,
                       double *out);
int xcp__metrics_record(xcp__metrics *m, const char *uuid, const char *name);
int xcp__metrics_forget(xcp__metrics *m, const char *uuid, const char *name);

/* /rrd_updates: start (negative: relative), interval (s), cf (-1: all),
 * the host's RRD when host, the VMs' (vm_uuids NULL: every running VM's;
 * else those n), XML or JSON. -1 when no archive fits. */
int xcp__metrics_updates(xcp__metrics *m, int64_t start, int64_t interval,
                         int cf, bool host, const char *const *vm_uuids,
                         size_t n, bool json, xcp__buf *out);
/* /host_rrd and /vm_rrd: the whole RRD of uuid (NULL: the host's; a
 * running VM's, or the archive a VM left), XML or JSON. -ENOENT when
 * none. */
int xcp__metrics_rrd(xcp__metrics *m, const char *uuid, bool json,
                     xcp__buf *out);
/* /metrics: the latest values in Prometheus' text format. */
void xcp__metrics_openmetrics(xcp__metrics *m, xcp__buf *out);

/* Figures for benchmarks: samples taken, CPU seconds the sampling used
 * (this process, thread time), RRDs in memory and their bytes. */
void xcp__metrics_costs(xcp__metrics *m, uint64_t *samples, double *cpu_s,
                        size_t *rrds, size_t *bytes);

/* An RRD from XAPI's RRD XML (Rrd.from_xml: what GET /vm_rrd writes and
 * PUT /rrd carries; api/metrics_xml.c), read as XAPI reads it. NULL with
 * the reason in why (a malformed document, or out of memory). */
xcp__rrd *xcp__rrd_from_xapi_xml(const char *doc, size_t len, char *why,
                                 size_t why_len);
/*
 * PUT /rrd: rrd (taken, freed here in every case) becomes uuid's RRD: the
 * one in memory when uuid is the host or a VM running here (XAPI replaces
 * it in its table), else it is written to <state dir>/rrd/<uuid> at once,
 * durably, for the VM's next start here (XAPI's archive). 0, or a
 * negative errno (the write's).
 */
int xcp__metrics_put(xcp__metrics *m, const char *uuid, xcp__rrd *rrd);

#endif
