/*
 * First boot of a state directory: the pool of one host describing this
 * machine (hostname, CPUs, memory from the hypervisor driver), its control
 * domain, host_cpu and host_metrics, a local `file` SR, a network per
 * physical NIC, and the default templates read from templates.yaml with
 * libyaml. Later boots only re-read the host's live figures and re-sync
 * templates when the YAML's version changes.
 */
#include "storage.h"

#include <dirent.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>
#include <yaml.h>


static int put(xcp__ctx *c, xcp__obj *o, int field, const char *k,
               const char *v)
{
    return xcp__db_map_put_str(c->db, o, field, k, v ? v : "");
}

static int put_int(xcp__ctx *c, xcp__obj *o, int field, const char *k,
                   int64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    return put(c, o, field, k, buf);
}

/* The first IPv4 address of network device dev (NULL: of any device but
 * lo) into out; -1 when it has none. */
static int dev_ipv4(const char *dev, char *out, size_t len)
{
    struct ifaddrs *ifa, *i;
    int rc = -1;

    if (getifaddrs(&ifa) < 0)
        return -1;
    for (i = ifa; i && rc < 0; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            (dev ? strcmp(i->ifa_name, dev) : !strcmp(i->ifa_name, "lo")))
            continue;
        if (inet_ntop(AF_INET,
                      &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
                      (socklen_t)len))
            rc = 0;
    }
    freeifaddrs(ifa);
    return rc;
}

/* The host's management PIF (NULL: none). */
static xcp__obj *management_pif(xcp__ctx *c, xcp__obj *host)
{
    size_t i, n;
    xcp__obj *const *pifs = xcp__db_all(c->db, C(PIF), &n);

    for (i = 0; i < n; i++)
        if (xcp__obj_bool(pifs[i], F(PIF, management)) &&
            !strcmp(xcp__obj_str(pifs[i], F(PIF, host)), host->ref))
            return pifs[i];
    return NULL;
}

/*
 * host.address is the management interface's IP, as XAPI keeps it: read
 * live at every start from the management PIF's bridge (or, where no
 * bridge carries it, its device) and written to the PIF's IP too; then
 * the consoles' locations follow it (and any set_address since). Without
 * a management address the last known one stays, or on first boot any
 * non-loopback IPv4 address (127.0.0.1 at worst), so that clients always
 * have somewhere to go.
 */
static int sync_address(xcp__ctx *c, xcp__obj *host)
{
    xcp__obj *pif = management_pif(c, host), *net;
    char ip[256] = ""; /* or a name or IPv6 address set by hand */
    int rc;

    if (pif) {
        net = xcp__db_get_cls(c->db, C(network),
                              xcp__obj_str(pif, F(PIF, network)));
        if ((!net || dev_ipv4(xcp__obj_str(net, F(network, bridge)), ip,
                              sizeof(ip)) < 0) &&
            dev_ipv4(xcp__obj_str(pif, F(PIF, device)), ip, sizeof(ip)) < 0)
            ip[0] = '\0';
        if (ip[0] && strcmp(ip, xcp__obj_str(pif, F(PIF, IP))) &&
            (rc = xcp__db_set_str(c->db, pif, F(PIF, IP), ip)) < 0)
            return rc;
    }
    if (!ip[0])
        snprintf(ip, sizeof(ip), "%s", xcp__obj_str(host, F(host, address)));
    if (!ip[0] && dev_ipv4(NULL, ip, sizeof(ip)) < 0)
        snprintf(ip, sizeof(ip), "127.0.0.1");
    if (strcmp(ip, xcp__obj_str(host, F(host, address))) &&
        (rc = xcp__db_set_str(c->db, host, F(host, address), ip)) < 0)
        return rc;
    return xcp__consoles_relocate(c);
}

/* The uuid <state dir>/host-uuid keeps for this host (a host ejected
 * from a pool keeps its uuid, as XAPI's inventory does), or NULL. */
static const char *saved_uuid(xcp__ctx *c)
{
    static _Thread_local char uuid[64];
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/host-uuid", c->e->state_dir);
    uuid[0] = '\0';
    if ((f = fopen(path, "r"))) {
        if (fgets(uuid, sizeof(uuid), f))
            uuid[strcspn(uuid, "\n")] = '\0';
        fclose(f);
    }
    return strlen(uuid) == 36 ? uuid : NULL;
}

static int make_host(xcp__ctx *c, const xcp_hv_host_info *hi, xcp__obj **out)
{
    xcp__obj *h, *m;
    char caps[XCP_HV_CAPS_MAX], *tok, *save;
    char boot[32];
    uint32_t i;
    int rc;

    snprintf(boot, sizeof(boot), "%lld", (long long)xcp__now());
    if ((rc = xcp__db_create(c->db, C(host), NULL, saved_uuid(c), &h)) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, name_label), hi->hostname)) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, name_description),
                              "Default install")) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, hostname), hi->hostname)) < 0 ||
        (rc = xcp__db_set_bool(c->db, h, F(host, enabled), true)) < 0 ||
        (rc = xcp__db_set_int(c->db, h, F(host, API_version_major), 2)) < 0 ||
        (rc = xcp__db_set_int(c->db, h, F(host, API_version_minor), 23)) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, API_version_vendor),
                              "libxcp")) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, edition), "xcp-ng")) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, sched_policy), "credit")) < 0 ||
        (rc = xcp__db_set_int(c->db, h, F(host, memory_overhead),
                              (int64_t)hi->memory_hypervisor)) < 0 ||
        (rc = put(c, h, F(host, software_version), "product_version",
                  "8.3.0")) < 0 ||
        (rc = put(c, h, F(host, software_version), "product_brand",
                  "libxcp")) < 0 ||
        (rc = put(c, h, F(host, software_version), "platform_name",
                  "XCP")) < 0 ||
        (rc = put(c, h, F(host, software_version), "platform_version",
                  "3.4.0")) < 0 ||
        (rc = put(c, h, F(host, software_version), "build_number",
                  PACKAGE_VERSION)) < 0 ||
        (rc = put(c, h, F(host, software_version), "xapi", "25.0")) < 0 ||
        (rc = put(c, h, F(host, software_version), "xen",
                  hi->hv_version)) < 0 ||
        (rc = put(c, h, F(host, software_version), "hostname",
                  hi->hostname)) < 0 ||
        (rc = put(c, h, F(host, software_version), "libxcp",
                  PACKAGE_VERSION)) < 0 ||
        (rc = put(c, h, F(host, other_config), "boot_time", boot)) < 0 ||
        (rc = put(c, h, F(host, other_config), "agent_start_time", boot)) < 0 ||
        (rc = put_int(c, h, F(host, cpu_info), "cpu_count", hi->nr_cpus)) < 0 ||
        (rc = put_int(c, h, F(host, cpu_info), "socket_count",
                      hi->sockets)) < 0 ||
        (rc = put(c, h, F(host, cpu_info), "vendor", hi->cpu_vendor)) < 0 ||
        (rc = put_int(c, h, F(host, cpu_info), "speed", hi->cpu_mhz)) < 0 ||
        (rc = put(c, h, F(host, cpu_info), "modelname",
                  hi->cpu_model_name)) < 0 ||
        (rc = put_int(c, h, F(host, cpu_info), "family", hi->cpu_family)) < 0 ||
        (rc = put_int(c, h, F(host, cpu_info), "model", hi->cpu_model)) < 0 ||
        (rc = put_int(c, h, F(host, cpu_info), "stepping",
                      hi->cpu_stepping)) < 0 ||
        (rc = put(c, h, F(host, cpu_info), "flags", hi->cpu_flags)) < 0 ||
        (rc = put(c, h, F(host, bios_strings), "bios-vendor", "libxcp")) < 0 ||
        (rc = put(c, h, F(host, bios_strings), "system-manufacturer",
                  "libxcp")) < 0 ||
        (rc = put(c, h, F(host, chipset_info), "iommu", "false")) < 0)
        return rc;
    snprintf(caps, sizeof(caps), "%s", hi->capabilities);
    for (tok = strtok_r(caps, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if ((rc = xcp__db_set_add_str(c->db, h, F(host, capabilities),
                                      tok)) < 0)
            return rc;
    if ((rc = xcp__db_create(c->db, C(host_metrics), NULL, NULL, &m)) < 0 ||
        (rc = xcp__db_set_int(c->db, m, F(host_metrics, memory_total),
                              (int64_t)hi->memory_total)) < 0 ||
        (rc = xcp__db_set_int(c->db, m, F(host_metrics, memory_free),
                              (int64_t)hi->memory_free)) < 0 ||
        (rc = xcp__db_set_bool(c->db, m, F(host_metrics, live), true)) < 0 ||
        (rc = xcp__db_set_time(c->db, m, F(host_metrics, last_updated),
                               xcp__now())) < 0 ||
        (rc = xcp__db_set_str(c->db, h, F(host, metrics), m->ref)) < 0)
        return rc;
    for (i = 0; i < hi->nr_cpus; i++) {
        xcp__obj *cpu;
        char step[16];
        snprintf(step, sizeof(step), "%u", hi->cpu_stepping);
        if ((rc = xcp__db_create(c->db, C(host_cpu), NULL, NULL, &cpu)) < 0 ||
            (rc = xcp__db_set_str(c->db, cpu, F(host_cpu, host), h->ref)) < 0 ||
            (rc = xcp__db_set_int(c->db, cpu, F(host_cpu, number), i)) < 0 ||
            (rc = xcp__db_set_str(c->db, cpu, F(host_cpu, vendor),
                                  hi->cpu_vendor)) < 0 ||
            (rc = xcp__db_set_int(c->db, cpu, F(host_cpu, speed),
                                  hi->cpu_mhz)) < 0 ||
            (rc = xcp__db_set_str(c->db, cpu, F(host_cpu, modelname),
                                  hi->cpu_model_name)) < 0 ||
            (rc = xcp__db_set_str(c->db, cpu, F(host_cpu, flags),
                                  hi->cpu_flags)) < 0 ||
            (rc = xcp__db_set_int(c->db, cpu, F(host_cpu, family),
                                  hi->cpu_family)) < 0 ||
            (rc = xcp__db_set_int(c->db, cpu, F(host_cpu, model),
                                  hi->cpu_model)) < 0 ||
            (rc = xcp__db_set_str(c->db, cpu, F(host_cpu, stepping), step)) < 0)
            return rc;
    }
    *out = h;
    return 0;
}

static int make_dom0(xcp__ctx *c, xcp__obj *host, const xcp_hv_host_info *hi,
                     xcp__obj **out)
{
    xcp_hv_domain_info d;
    xcp_hv_error e;
    xcp__obj *vm, *m;
    char *name;
    int rc;

    memset(&d, 0, sizeof(d));
    if (xcp__hv_domain_info(c->e->hv, 0, &d, &e) < 0) {
        d.memory_actual = d.memory_max = 1024ull << 20;
        d.vcpus_online = d.vcpus_max = hi->nr_cpus;
    }
    name = xcp__printf("Control domain on host: %s", hi->hostname);
    if (!name)
        return xcp__oom();
    rc = xcp__db_create(c->db, C(VM), NULL, NULL, &vm);
    if (rc == 0)
        rc = xcp__db_set_str(c->db, vm, F(VM, name_label), name);
    free(name);
    if (rc < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, name_description),
                              "The domain which manages physical devices and "
                              "manages other domains")) < 0 ||
        (rc = xcp__db_set_bool(c->db, vm, F(VM, is_control_domain), true)) < 0 ||
        (rc = xcp__vm_init_record(c, vm)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, power_state), "Running")) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), 0)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, resident_on), host->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, domain_type), "pv")) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_static_max),
                              (int64_t)d.memory_max)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_max),
                              (int64_t)d.memory_target)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_min),
                              (int64_t)d.memory_target)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_static_min),
                              (int64_t)d.memory_target)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, VCPUs_max), d.vcpus_max)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, VCPUs_at_startup),
                              d.vcpus_online)) < 0 ||
        (rc = xcp__db_set_str(c->db, host, F(host, control_domain),
                              vm->ref)) < 0)
        return rc;
    m = xcp__db_get_cls(c->db, C(VM_metrics), xcp__obj_str(vm, F(VM, metrics)));
    if (m && ((rc = xcp__db_set_int(c->db, m, F(VM_metrics, memory_actual),
                                    (int64_t)d.memory_actual)) < 0 ||
              (rc = xcp__db_set_int(c->db, m, F(VM_metrics, VCPUs_number),
                                    d.vcpus_online)) < 0 ||
              (rc = xcp__db_set_time(c->db, m, F(VM_metrics, start_time),
                                     d.start_time_ns / 1000000000)) < 0 ||
              (rc = xcp__db_set_str(c->db, m,
                                    F(VM_metrics, current_domain_type),
                                    "pv")) < 0))
        return rc;
    *out = vm;
    return xcp__update_allowed(c, vm);
}

static int read_sys(const char *dev, const char *file, char *out, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "/sys/class/net/%s/%s", dev, file);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(out, (int)len, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

static int make_network(xcp__ctx *c, xcp__obj *host, const char *dev, int n,
                        bool management)
{
    xcp__obj *net, *pif, *pm;
    char name[128], bridge[32], mac[64] = "", mtu[16] = "1500";
    int rc;

    snprintf(bridge, sizeof(bridge), "xenbr%d", n);
    if (dev)
        snprintf(name, sizeof(name), "Pool-wide network associated with %s",
                 dev);
    else
        snprintf(name, sizeof(name), "Host internal network");
    if ((rc = xcp__db_create(c->db, C(network), NULL, NULL, &net)) < 0 ||
        (rc = xcp__db_set_str(c->db, net, F(network, name_label), name)) < 0 ||
        (rc = xcp__db_set_str(c->db, net, F(network, bridge), bridge)) < 0 ||
        (rc = put(c, net, F(network, other_config), "automatic",
                  dev ? "true" : "false")) < 0)
        return rc;
    if (!dev)
        return 0;
    read_sys(dev, "address", mac, sizeof(mac));
    read_sys(dev, "mtu", mtu, sizeof(mtu));
    if ((rc = xcp__db_create(c->db, C(PIF), NULL, NULL, &pif)) < 0 ||
        (rc = xcp__db_set_str(c->db, pif, F(PIF, device), dev)) < 0 ||
        (rc = xcp__db_set_str(c->db, pif, F(PIF, network), net->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, pif, F(PIF, host), host->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, pif, F(PIF, MAC), mac)) < 0 ||
        (rc = xcp__db_set_int(c->db, pif, F(PIF, MTU), atoi(mtu))) < 0 ||
        (rc = xcp__db_set_int(c->db, net, F(network, MTU), atoi(mtu))) < 0 ||
        (rc = xcp__db_set_bool(c->db, pif, F(PIF, physical), true)) < 0 ||
        (rc = xcp__db_set_bool(c->db, pif, F(PIF, managed), true)) < 0 ||
        (rc = xcp__db_set_bool(c->db, pif, F(PIF, currently_attached),
                               true)) < 0 ||
        (rc = xcp__db_set_bool(c->db, pif, F(PIF, management),
                               management)) < 0 ||
        (rc = xcp__db_create(c->db, C(PIF_metrics), NULL, NULL, &pm)) < 0 ||
        (rc = xcp__db_set_bool(c->db, pm, F(PIF_metrics, carrier), true)) < 0 ||
        (rc = xcp__db_set_str(c->db, pif, F(PIF, metrics), pm->ref)) < 0)
        return rc;
    return 0;
}

static int make_networks(xcp__ctx *c, xcp__obj *host)
{
    DIR *d = opendir("/sys/class/net");
    struct dirent *de;
    char names[16][64];
    int n = 0, i, rc = 0;

    while (d && (de = readdir(d)) && n < 16) {
        char path[512];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/sys/class/net/%s/device", de->d_name);
        if (stat(path, &st) == 0) /* a real NIC, not lo/veth/bridge */
            snprintf(names[n++], sizeof(names[0]), "%.63s", de->d_name);
    }
    if (d)
        closedir(d);
    /* Stable order: eth0 before eth1. */
    for (i = 1; i < n; i++) {
        int j = i;
        while (j > 0 && strcmp(names[j - 1], names[j]) > 0) {
            char t[64];
            memcpy(t, names[j], sizeof(t));
            memcpy(names[j], names[j - 1], sizeof(t));
            memcpy(names[j - 1], t, sizeof(t));
            j--;
        }
    }
    for (i = 0; i < n && rc == 0; i++)
        rc = make_network(c, host, names[i], i, i == 0);
    if (n == 0 && rc == 0)
        rc = make_network(c, host, NULL, 0, false);
    return rc;
}

static int make_local_sr(xcp__ctx *c, xcp__obj *host, xcp__obj **out)
{
    xcp_value dconf;
    char *path = xcp__printf("%s/sr/local", c->e->state_dir);
    int rc;

    struct stat st;

    if (!path)
        return xcp__oom();
    if (stat(path, &st) == 0) {
        /* First boot has no records of it, so this is what a first boot
         * that crashed before committing left behind: set it aside (never
         * delete data) and start afresh. */
        char *aside = xcp__printf("%s.orphan-%lld", path,
                                  (long long)xcp__now());
        if (!aside || rename(path, aside) < 0) {
            int rc2 = xcp__internal("cannot set aside %s left by an "
                                    "interrupted first boot", path);
            free(aside);
            free(path);
            return rc2;
        }
        xcp__log(XCP__LOG_WARN, "moved %s, left by an interrupted first boot, "
                 "to %s", path, aside);
        free(aside);
    }
    xcp_value_set_struct(&dconf);
    {
        xcp_value v;
        if ((rc = xcp_value_set_string(&v, path)) < 0 ||
            (rc = xcp_value_struct_add(&dconf, "location", &v)) < 0) {
            free(path);
            xcp_value_dispose(&dconf);
            return rc;
        }
    }
    free(path);
    rc = xcp__sr_create(c, host, &dconf, "Local storage", "", "file", "user",
                        false, out);
    xcp_value_dispose(&dconf);
    if (rc == 0)
        rc = put(c, *out, F(SR, other_config), "i18n-key", "local-storage");
    return rc;
}

/* ---- templates ---------------------------------------------------------------- */

static yaml_node_t *ymap(yaml_document_t *doc, yaml_node_t *map,
                         const char *key)
{
    yaml_node_pair_t *p;

    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            !strcmp((char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static const char *ystr(yaml_document_t *doc, yaml_node_t *map,
                        const char *key)
{
    yaml_node_t *n = ymap(doc, map, key);

    return (n && n->type == YAML_SCALAR_NODE) ? (char *)n->data.scalar.value
                                              : NULL;
}

static int64_t yint(yaml_document_t *doc, yaml_node_t *map, const char *key,
                    int64_t def)
{
    const char *s = ystr(doc, map, key);

    return s ? strtoll(s, NULL, 10) : def;
}

/* A YAML mapping of scalars into a map field. */
static int ymap_to_field(xcp__ctx *c, yaml_document_t *doc, yaml_node_t *map,
                         xcp__obj *o, int field)
{
    yaml_node_pair_t *p;
    int rc;

    if (!map || map->type != YAML_MAPPING_NODE)
        return 0;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE ||
            v->type != YAML_SCALAR_NODE)
            continue;
        if ((rc = put(c, o, field, (char *)k->data.scalar.value,
                      (char *)v->data.scalar.value)) < 0)
            return rc;
    }
    return 0;
}

static char *disks_xml(yaml_document_t *doc, yaml_node_t *disks)
{
    xcp__buf b = {0};
    yaml_node_item_t *it;

    xcp__buf_adds(&b, "<provision>");
    for (it = disks ? disks->data.sequence.items.start : NULL;
         disks && disks->type == YAML_SEQUENCE_NODE &&
         it < disks->data.sequence.items.top;
         it++) {
        yaml_node_t *d = yaml_document_get_node(doc, *it);
        const char *boot = ystr(doc, d, "bootable");
        const char *type = ystr(doc, d, "type");
        xcp__buf_printf(&b, "<disk device=\"%lld\" size=\"%lld\" sr=\"\" "
                        "bootable=\"%s\" type=\"%s\"/>",
                        (long long)yint(doc, d, "device", 0),
                        (long long)yint(doc, d, "size", 0),
                        boot && !strcmp(boot, "true") ? "true" : "false",
                        type ? type : "system");
    }
    xcp__buf_adds(&b, "</provision>");
    return xcp__buf_steal(&b);
}

static int make_template(xcp__ctx *c, yaml_document_t *doc, yaml_node_t *t)
{
    xcp__obj *vm;
    const char *s;
    char *xml;
    int rc;

    if (!ystr(doc, t, "name") || !ystr(doc, t, "reference_label"))
        return xcp__internal("template without name or reference_label");
    if ((rc = xcp__db_create(c->db, C(VM), NULL, NULL, &vm)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, name_label),
                              ystr(doc, t, "name"))) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, name_description),
                              (s = ystr(doc, t, "description")) ? s : "")) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, reference_label),
                              ystr(doc, t, "reference_label"))) < 0 ||
        (rc = xcp__db_set_bool(c->db, vm, F(VM, is_a_template), true)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vm, F(VM, is_default_template),
                               true)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, domain_type),
                              (s = ystr(doc, t, "domain_type")) ? s
                                                                : "hvm")) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, HVM_boot_policy),
                              (s && !strcmp(s, "hvm")) || !s ? "BIOS order"
                                                             : "")) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_static_min),
                              yint(doc, t, "memory_static_min", 0))) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_min),
                              yint(doc, t, "memory_dynamic_min", 0))) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_max),
                              yint(doc, t, "memory_dynamic_max", 0))) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_static_max),
                              yint(doc, t, "memory_static_max", 0))) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, VCPUs_max),
                              yint(doc, t, "vcpus_max", 1))) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, VCPUs_at_startup),
                              yint(doc, t, "vcpus_at_startup", 1))) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, recommendations),
                              (s = ystr(doc, t, "recommendations")) ? s
                                                                    : "")) < 0 ||
        (rc = xcp__db_set_bool(c->db, vm, F(VM, has_vendor_device),
                               (s = ystr(doc, t, "has_vendor_device")) &&
                                   !strcmp(s, "true"))) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, actions_after_crash),
                              "restart")) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, actions_after_reboot),
                              "restart")) < 0 ||
        (rc = ymap_to_field(c, doc, ymap(doc, t, "platform"), vm,
                            F(VM, platform))) < 0 ||
        (rc = ymap_to_field(c, doc, ymap(doc, t, "hvm_boot_params"), vm,
                            F(VM, HVM_boot_params))) < 0 ||
        (rc = ymap_to_field(c, doc, ymap(doc, t, "other_config"), vm,
                            F(VM, other_config))) < 0)
        return rc;
    if (!(xml = disks_xml(doc, ymap(doc, t, "disks"))))
        return xcp__oom();
    rc = put(c, vm, F(VM, other_config), "disks", xml);
    free(xml);
    if (rc < 0 ||
        (rc = put(c, vm, F(VM, other_config), "default_template", "true")) < 0)
        return rc;
    return xcp__vm_init_record(c, vm);
}

static char *templates_path(void)
{
    const char *env = getenv("XCP_TEMPLATES");
    struct stat st;

    if (env && *env)
        return xcp__strdup(env);
    if (stat(XCP_DATADIR "/templates.yaml", &st) == 0)
        return xcp__strdup(XCP_DATADIR "/templates.yaml");
#ifdef XCP_SRCDIR
    if (stat(XCP_SRCDIR "/data/templates.yaml", &st) == 0)
        return xcp__strdup(XCP_SRCDIR "/data/templates.yaml");
#endif
    return NULL;
}

/* Remove default templates no longer shipped, create the missing ones. */
static int apply_templates(xcp__ctx *c, yaml_document_t *doc,
                           yaml_node_t *list)
{
    size_t n, i;
    xcp__obj *const *all = xcp__db_all(c->db, C(VM), &n);
    xcp__obj **olds = xcp__calloc(n, sizeof(*olds));
    yaml_node_item_t *it;
    size_t k = 0;
    int rc = 0;

    if (!olds)
        return xcp__oom();
    for (i = 0; i < n; i++)
        if (xcp__obj_bool(all[i], F(VM, is_default_template)))
            olds[k++] = all[i];
    /* Default templates are replaced wholesale: none of them is ever
     * modified by clients (they cannot be). */
    for (i = 0; i < k && rc == 0; i++) {
        rc = xcp__vm_destroy_record(c, olds[i]);
    }
    free(olds);
    for (it = list->data.sequence.items.start;
         rc == 0 && it < list->data.sequence.items.top; it++)
        rc = make_template(c, doc, yaml_document_get_node(doc, *it));
    return rc;
}

int xcp__templates_sync(xcp__ctx *c)
{
    xcp__obj *pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);
    char *path = templates_path();
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root, *list;
    const char *ver, *have;
    FILE *f;
    int rc = 0;

    if (!path) {
        xcp__log(XCP__LOG_WARN, "templates.yaml not found: no default "
                 "templates (set XCP_TEMPLATES)");
        return 0;
    }
    if (!(f = fopen(path, "r"))) {
        rc = xcp__internal("cannot open %s", path);
        free(path);
        return rc;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = xcp__internal("%s: YAML error at line %zu: %s", path,
                           parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "?");
        yaml_parser_delete(&parser);
        fclose(f);
        free(path);
        return rc;
    }
    root = yaml_document_get_root_node(&doc);
    ver = ystr(&doc, root, "version");
    list = ymap(&doc, root, "templates");
    have = pool ? xcp__obj_map_str(pool, F(pool, other_config),
                                   "libxcp_templates_version") : NULL;
    if (!list || list->type != YAML_SEQUENCE_NODE || !ver) {
        rc = xcp__internal("%s: expected `version` and a `templates` list",
                           path);
    } else if (pool && (!have || strcmp(have, ver))) {
        rc = apply_templates(c, &doc, list);
        if (rc == 0)
            rc = put(c, pool, F(pool, other_config), "libxcp_templates_version",
                     ver);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    free(path);
    return rc;
}

/* ---- first boot ------------------------------------------------------------------ */

/* What the driver says of this host; its reason when it cannot say. */
static int host_info(xcp__ctx *c, xcp_hv_host_info *hi)
{
    xcp_hv_error e;

    if (xcp__hv_host_info(c->e->hv, hi, &e) < 0)
        return xcp__internal("cannot read host information: %s", e.message);
    return 0;
}

static int refresh_live(xcp__ctx *c, xcp__obj *host)
{
    xcp_hv_host_info hi;
    xcp__obj *m;
    int rc;

    if ((rc = host_info(c, &hi)) < 0)
        return rc;
    m = xcp__db_get_cls(c->db, C(host_metrics),
                        xcp__obj_str(host, F(host, metrics)));
    if (m && ((rc = xcp__db_set_int(c->db, m, F(host_metrics, memory_total),
                                    (int64_t)hi.memory_total)) < 0 ||
              (rc = xcp__db_set_int(c->db, m, F(host_metrics, memory_free),
                                    (int64_t)hi.memory_free)) < 0))
        return rc;
    return 0;
}

static xcp__obj *this_host(xcp__ctx *c, xcp__obj *pool)
{
    char path[4096], uuid[64] = "";
    xcp__obj *h = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/host-uuid", c->e->state_dir);
    if ((f = fopen(path, "r"))) {
        if (fgets(uuid, sizeof(uuid), f))
            uuid[strcspn(uuid, "\n")] = '\0';
        fclose(f);
        h = *uuid ? xcp__db_by_uuid(c->db, C(host), uuid) : NULL;
    }
    return h ? h : xcp__db_get_cls(c->db, C(host),
                                   xcp__obj_str(pool, F(pool, master)));
}

int xcp__firstboot_member(xcp__ctx *c, unsigned nodeid)
{
    size_t n, i;
    xcp__obj *const *hosts = xcp__db_all(c->db, C(host), &n);
    xcp__obj *host = NULL, *dom0;
    xcp_hv_host_info hi;
    char id[16];
    int rc;

    snprintf(id, sizeof(id), "%u", nodeid);
    for (i = 0; i < n && !host; i++) {
        const char *v = xcp__obj_map_str(hosts[i], F(host, other_config),
                                         "corosync-nodeid");
        if (v && !strcmp(v, id))
            host = hosts[i];
    }
    if (host) {
        char now[32];
        snprintf(c->e->host, sizeof(c->e->host), "%s", host->ref);
        snprintf(c->e->dom0, sizeof(c->e->dom0), "%s",
                 xcp__obj_str(host, F(host, control_domain)));
        /* As XAPI's dbsync_slave at every start of the toolstack. */
        snprintf(now, sizeof(now), "%lld", (long long)xcp__now());
        if ((rc = refresh_live(c, host)) < 0 ||
            (rc = put(c, host, F(host, other_config), "agent_start_time",
                      now)) < 0)
            return rc;
        return sync_address(c, host);
    }
    if ((rc = host_info(c, &hi)) < 0 ||
        (rc = make_host(c, &hi, &host)) < 0 ||
        (rc = put(c, host, F(host, other_config), "corosync-nodeid", id)) < 0 ||
        (rc = make_dom0(c, host, &hi, &dom0)) < 0 ||
        (rc = sync_address(c, host)) < 0)
        return rc;
    snprintf(c->e->host, sizeof(c->e->host), "%s", host->ref);
    snprintf(c->e->dom0, sizeof(c->e->dom0), "%s", dom0->ref);
    return xcp__update_allowed(c, host);
}

int xcp__firstboot(xcp__ctx *c)
{
    size_t n;
    xcp__obj *const *pools = xcp__db_all(c->db, C(pool), &n);
    xcp__obj *pool, *host, *dom0 = NULL, *sr;
    xcp_hv_host_info hi;
    int rc;

    if (n > 0) {
        pool = pools[0];
        /* In a pool, this host is the one <state dir>/host-uuid names
         * (written by pool.join, as XAPI's inventory); alone, the
         * master. */
        host = this_host(c, pool);
        if (!host)
            return xcp__internal("the pool has no master host");
        snprintf(c->e->pool, sizeof(c->e->pool), "%s", pool->ref);
        snprintf(c->e->host, sizeof(c->e->host), "%s", host->ref);
        snprintf(c->e->dom0, sizeof(c->e->dom0), "%s",
                 xcp__obj_str(host, F(host, control_domain)));
        if ((rc = refresh_live(c, host)) < 0 ||
            (rc = sync_address(c, host)) < 0)
            return rc;
        return xcp__templates_sync(c);
    }
    if ((rc = host_info(c, &hi)) < 0 ||
        (rc = xcp__db_create(c->db, C(pool), NULL, NULL, &pool)) < 0 ||
        (rc = make_host(c, &hi, &host)) < 0)
        return rc;
    snprintf(c->e->pool, sizeof(c->e->pool), "%s", pool->ref);
    snprintf(c->e->host, sizeof(c->e->host), "%s", host->ref);
    if ((rc = xcp__db_set_str(c->db, pool, F(pool, master), host->ref)) < 0 ||
        (rc = put_int(c, pool, F(pool, cpu_info), "cpu_count", hi.nr_cpus)) < 0 ||
        (rc = put_int(c, pool, F(pool, cpu_info), "socket_count",
                      hi.sockets)) < 0 ||
        (rc = put(c, pool, F(pool, cpu_info), "vendor", hi.cpu_vendor)) < 0 ||
        (rc = put(c, pool, F(pool, restrictions), "restrict_vtpm",
                  "false")) < 0 ||
        (rc = make_dom0(c, host, &hi, &dom0)) < 0)
        return rc;
    snprintf(c->e->dom0, sizeof(c->e->dom0), "%s", dom0->ref);
    if ((rc = make_local_sr(c, host, &sr)) < 0 ||
        (rc = xcp__db_set_str(c->db, pool, F(pool, default_SR), sr->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, pool, F(pool, suspend_image_SR),
                              sr->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, pool, F(pool, crash_dump_SR),
                              sr->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, host, F(host, suspend_image_sr),
                              sr->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, host, F(host, crash_dump_sr),
                              sr->ref)) < 0 ||
        (rc = make_networks(c, host)) < 0 ||
        (rc = sync_address(c, host)) < 0 ||
        (rc = xcp__update_allowed(c, host)) < 0)
        return rc;
    return xcp__templates_sync(c);
}
