/*
 * rpc/xml_lib.c - libxml2 loaded at the first XML parse (core/dl.c), its
 * parser initialised once (xmlInitParser is not safe to race with itself).
 */
#include <pthread.h>

#include "../core/core.h"
#include "xml_lib.h"

static xcp__xml_lib xml;
static char why[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void (*init)(void) = NULL;
    xmlFreeFunc *free_var = NULL;
    const xcp__dl_sym syms[] = {
        {(void **)&xml.ReaderForMemory, "xmlReaderForMemory"},
        {(void **)&xml.TextReaderSetStructuredErrorHandler,
         "xmlTextReaderSetStructuredErrorHandler"},
        {(void **)&xml.TextReaderRead, "xmlTextReaderRead"},
        {(void **)&xml.TextReaderNodeType, "xmlTextReaderNodeType"},
        {(void **)&xml.TextReaderConstName, "xmlTextReaderConstName"},
        {(void **)&xml.TextReaderConstValue, "xmlTextReaderConstValue"},
        {(void **)&xml.TextReaderIsEmptyElement,
         "xmlTextReaderIsEmptyElement"},
        {(void **)&xml.FreeTextReader, "xmlFreeTextReader"},
        {(void **)&xml.ReadMemory, "xmlReadMemory"},
        {(void **)&xml.DocGetRootElement, "xmlDocGetRootElement"},
        {(void **)&xml.GetProp, "xmlGetProp"},
        {(void **)&xml.Strcmp, "xmlStrcmp"},
        {(void **)&xml.FreeDoc, "xmlFreeDoc"},
        {(void **)&free_var, "xmlFree"},
        {(void **)&init, "xmlInitParser"},
    };

    if (xcp__dl_load("libxml2.so.2", syms, XCP__ARRAY_LEN(syms), why,
                     sizeof(why)) < 0)
        return;
    xml.Free = *free_var;
    init();
}

int xcp__xml(const xcp__xml_lib **out)
{
    pthread_once(&once, load);
    *out = xml.Free ? &xml : NULL;
    return xml.Free ? 0 : XCP__ERR_INTERNAL_ERROR_DETAIL("cannot load libxml2",
                                                         why);
}
