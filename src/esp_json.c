/*-------------------------------------------------------------------------
 *
 * esp_json.c
 *	  Reading the providers' JSON answers (see esp_json.h).
 *
 *-------------------------------------------------------------------------
 */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_json.h"
#include "provider_json.h"

json_object *
esp_parse(const char *body, size_t len)
{
	json_tokener *tok;
	json_object *o;

	if (body == NULL || len == 0)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, body, (int) len);
	if (json_tokener_get_error(tok) != json_tokener_success)
	{
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

json_object *
esp_member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

void
esp_copy_str(json_object *v, char *out, size_t outlen)
{
	const char *s;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (v == NULL || json_object_is_type(v, json_type_null))
		return;
	s = json_object_get_string(v);
	if (s)
		snprintf(out, outlen, "%s", s);
}

void
esp_clear(EspResult *r, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		r[i].ok = -1;
		r[i].code = 0;
		r[i].id[0] = '\0';
		r[i].error[0] = '\0';
	}
}

int
esp_json_member(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
	json_object *o;
	json_object *v;
	int			rc = -1;

	/* "not found" reads as an empty string, never as what was there before */
	if (outlen > 0)
		out[0] = '\0';
	o = esp_parse(body, len);
	v = esp_member(o, key);
	if (v && !json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array))
	{
		esp_copy_str(v, out, outlen);
		rc = 0;
	}
	json_object_put(o);
	return rc;
}
