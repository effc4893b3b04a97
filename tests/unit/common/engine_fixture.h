/*
 * tests/unit/common/engine_fixture.h - an engine on a fresh state
 * directory, for unit tests that look at the engine from inside.
 */
#ifndef XCP_TEST_ENGINE_FIXTURE_H
#define XCP_TEST_ENGINE_FIXTURE_H

#include <stddef.h>

#include "engine/engine.h"

/* Make a state directory named after tag under $TMPDIR (or /tmp) into
 * dir, and open an engine on it with the sim driver and no fsync. The
 * caller sets any other XCP_* environment first. Fails the test (Criterion
 * assertion) when either cannot be done. */
xcp__engine *fixture_engine_open(char *dir, size_t size, const char *tag);

/* Close the engine and remove its state directory. */
void fixture_engine_close(xcp__engine *e, const char *dir);

#endif
