/*
 * rpc/xml_lib.h - libxml2, loaded at the first XML parse (dlopen), so that
 * a process which never parses XML (xe through xcpd speaks JSON-RPC, an
 * embedded xe seldom parses any) does not map libxml2 and what it pulls
 * in (ICU, libstdc++, liblzma) at start-up: under a PV dom0 on QEMU TCG,
 * xe's start-up was a third page faults of those libraries.
 */
#ifndef XCP_RPC_XML_LIB_H
#define XCP_RPC_XML_LIB_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlreader.h>

/* The libxml2 functions the library calls, named as in libxml2 without
 * the "xml" prefix. */
typedef struct xcp__xml_lib {
    /* the streaming reader (rpc/xmlrpc.c) */
    xmlTextReaderPtr (*ReaderForMemory)(const char *, int, const char *,
                                        const char *, int);
    void (*TextReaderSetStructuredErrorHandler)(xmlTextReaderPtr,
                                                xmlStructuredErrorFunc,
                                                void *);
    int (*TextReaderRead)(xmlTextReaderPtr);
    int (*TextReaderNodeType)(xmlTextReaderPtr);
    const xmlChar *(*TextReaderConstName)(xmlTextReaderPtr);
    const xmlChar *(*TextReaderConstValue)(xmlTextReaderPtr);
    int (*TextReaderIsEmptyElement)(xmlTextReaderPtr);
    void (*FreeTextReader)(xmlTextReaderPtr);
    /* trees (api/vm_copy.c) */
    xmlDocPtr (*ReadMemory)(const char *, int, const char *, const char *,
                            int);
    xmlNodePtr (*DocGetRootElement)(const xmlDoc *);
    xmlChar *(*GetProp)(const xmlNode *, const xmlChar *);
    int (*Strcmp)(const xmlChar *, const xmlChar *);
    void (*FreeDoc)(xmlDocPtr);
    /* libxml2's xmlFree (a variable there, a function pointer) */
    xmlFreeFunc Free;
} xcp__xml_lib;

/*
 * libxml2 in *lib, loaded (and its parser initialised) on the first call
 * in the process: 0, or INTERNAL_ERROR naming the library and why it did
 * not load.
 */
int xcp__xml(const xcp__xml_lib **lib);

#endif
