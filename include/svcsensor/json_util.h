/* json_util.h - small helpers shared by the JSON readers (config, service map). */
#ifndef SVCSENSOR_JSON_UTIL_H
#define SVCSENSOR_JSON_UTIL_H

#include <jansson.h>

/* "an object", "a string", "an integer", "null", ... for error messages ("expected an array,
 * got a string"). Never NULL. */
const char *json_util__kind(const json_t *j);

#endif
