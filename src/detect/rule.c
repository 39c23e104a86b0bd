/* rule.c - the detection rule of include/svcsensor/rule.h: one walk of the service map, then the
 * minor masters and the allow rules. */
#include "svcsensor/rule.h"

#include <string.h>

#include "svcsensor/common.h"

/* Is the master of the application one of the minor ones? The master is master_name when
 * given, else the app name up to its first dot (the whole name when it has none). */
static bool minor_master(const struct svc_config *c, const char *app, const char *master)
{
	size_t len;

	if (master && *master) {
		len = strlen(master);
	} else {
		const char *dot = strchr(app, '.');
		master = app;
		len = dot ? (size_t)(dot - app) : strlen(app);
	}
	for (size_t i = 0; i < c->n_minor_masters; i++) {
		const char *mm = c->minor_masters[i];
		if (strncmp(mm, master, len) == 0 && mm[len] == '\0')
			return true;
	}
	return false;
}

static bool field_matches(const char *rule, const char *value)
{
	return !rule || (value && strcmp(rule, value) == 0);
}

bool rule__allowed(const struct svc_config *c, const char *src_key, const char *dst_key,
		   const char *app_name)
{
	for (size_t i = 0; i < c->n_allow; i++) {
		const struct allow_rule *r = &c->allow[i];
		if (field_matches(r->src, src_key) && field_matches(r->dst, dst_key) &&
		    field_matches(r->app, app_name))
			return true;
	}
	return false;
}

enum verdict rule__judge(const struct svcmap *m, const struct svc_config *c, const char *src_key,
			 const char *dst_key, const char *app_name, const char *master_name,
			 bool *allowed)
{
	enum verdict v;

	if (allowed)
		*allowed = false;
	if (!app_name)
		app_name = "Unknown";

	switch (svcmap__lookup(m, src_key, dst_key, app_name)) {
	case SVCMAP_MATCH:
		return VERDICT_NONE; /* the common case: one walk, no allow rules to check */
	case SVCMAP_NO_SOURCE:
		v = VERDICT_UNKNOWN_SOURCE_IP;
		break;
	case SVCMAP_NO_DESTINATION:
		v = VERDICT_UNKNOWN_DESTINATION_IP;
		break;
	case SVCMAP_NO_APP:
	default:
		if (strcmp(app_name, "Unknown") == 0)
			v = VERDICT_UNKNOWN_PROTOCOL;
		else if (minor_master(c, app_name, master_name))
			v = VERDICT_DNS_TLS_APPLICATION;
		else
			v = VERDICT_PROTOCOL_NEVER_USED;
		break;
	}

	if (SVC_UNLIKELY(c->n_allow) && rule__allowed(c, src_key, dst_key, app_name)) {
		if (allowed)
			*allowed = true;
		return VERDICT_NONE;
	}
	return v;
}
