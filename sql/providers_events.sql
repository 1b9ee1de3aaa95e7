-- Providers' webhook events as their documentation says (issue 15): each
-- payload below is shaped as in the provider's documentation; the event it
-- must give is in the comment.  docs/providers/<provider>.md cites the source.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS broadcast_engine;
\set SHOW_CONTEXT never
\set VERBOSITY default
SET broadcast_engine.webhook_tolerance = 0;

-- Postmark, Broadcast stream: complaints and hard-bounce suppressions come
-- as SubscriptionChange (complained; bounced hard); a reactivation is ignored
SELECT event, bounce_type, email FROM broadcast._events_postmark('[
 {"RecordType": "SubscriptionChange", "MessageID": "pm-1", "Recipient": "a@example.com",
  "Origin": "Recipient", "SuppressSending": true, "SuppressionReason": "SpamComplaint",
  "ChangedAt": "2024-02-01T10:00:00Z", "MessageStream": "broadcast", "Metadata": {}},
 {"RecordType": "SubscriptionChange", "MessageID": "pm-2", "Recipient": "b@example.com",
  "Origin": "Recipient", "SuppressSending": true, "SuppressionReason": "HardBounce",
  "ChangedAt": "2024-02-01T10:00:00Z", "MessageStream": "broadcast", "Metadata": {}},
 {"RecordType": "SubscriptionChange", "MessageID": "pm-3", "Recipient": "c@example.com",
  "Origin": "Customer", "SuppressSending": false, "SuppressionReason": null,
  "ChangedAt": "2024-02-01T10:00:00Z", "MessageStream": "broadcast"},
 {"RecordType": "SubscriptionChange", "MessageID": "pm-4", "Recipient": "d@example.com",
  "SuppressSending": true, "SuppressionReason": "ManualSuppression", "ChangedAt": "2024-02-01T10:00:00Z"}
]');

-- Postmark bounce types: bad addresses hard (HardBounce, BadEmailAddress,
-- ManuallyDeactivated, anything Postmark deactivated), Blocked soft,
-- SpamNotification a complaint, AutoResponder ignored
SELECT event, bounce_type, email FROM broadcast._events_postmark('[
 {"RecordType": "Bounce", "Type": "BadEmailAddress", "TypeCode": 100000, "Email": "e@example.com", "Inactive": true},
 {"RecordType": "Bounce", "Type": "ManuallyDeactivated", "TypeCode": 100002, "Email": "f@example.com", "Inactive": true},
 {"RecordType": "Bounce", "Type": "Blocked", "TypeCode": 100006, "Email": "g@example.com", "Inactive": false},
 {"RecordType": "Bounce", "Type": "Unknown", "TypeCode": 2048, "Email": "h@example.com", "Inactive": true},
 {"RecordType": "Bounce", "Type": "SpamNotification", "TypeCode": 512, "Email": "i@example.com", "Inactive": true},
 {"RecordType": "Bounce", "Type": "AutoResponder", "TypeCode": 64, "Email": "j@example.com", "Inactive": false}
]');

-- Resend: email.bounced is a permanent rejection whatever bounce.type says;
-- email.suppressed is a bad address too; email.delivery_delayed is not a failure
SELECT event, bounce_type, email FROM broadcast._events_resend('[
 {"type": "email.bounced", "created_at": "2024-11-22T23:41:12.126Z",
  "data": {"email_id": "r1", "to": ["a@example.com"],
		   "bounce": {"message": "The recipient''s email address is on the suppression list", "subType": "Suppressed", "type": "Permanent"}}},
 {"type": "email.bounced", "created_at": "2024-11-22T23:41:12.126Z",
  "data": {"email_id": "r2", "to": ["b@example.com"],
		   "bounce": {"message": "Mailbox does not exist", "subType": "General", "type": "hard_bounce"}}},
 {"type": "email.suppressed", "created_at": "2024-11-22T23:41:12.126Z",
  "data": {"email_id": "r3", "to": ["c@example.com"]}},
 {"type": "email.delivery_delayed", "created_at": "2024-11-22T23:41:12.126Z",
  "data": {"email_id": "r4", "to": ["d@example.com"]}}
]');

-- SendGrid "dropped" follows its reason
SELECT event, bounce_type, email FROM broadcast._events_sendgrid('[
 {"email": "a@example.com", "event": "dropped", "reason": "Bounced Address", "timestamp": 1700000000},
 {"email": "b@example.com", "event": "dropped", "reason": "Invalid", "timestamp": 1700000000},
 {"email": "c@example.com", "event": "dropped", "reason": "Spam Reporting Address", "timestamp": 1700000000},
 {"email": "d@example.com", "event": "dropped", "reason": "Unsubscribed Address", "timestamp": 1700000000},
 {"email": "e@example.com", "event": "dropped", "reason": "Spam Content (if spam checker app enabled)", "timestamp": 1700000000},
 {"email": "f@example.com", "event": "dropped", "reason": "Invalid SMTPAPI header", "timestamp": 1700000000}
]');

-- Mailjet "blocked": the recipient's fault is a hard bounce, the content's is not
SELECT event, bounce_type, email FROM broadcast._events_mailjet('[
 {"event": "blocked", "time": 1700000000, "email": "a@example.com", "error_related_to": "recipient", "error": "user unknown"},
 {"event": "blocked", "time": 1700000000, "email": "b@example.com", "error_related_to": "recipient", "error": "preblocked"},
 {"event": "blocked", "time": 1700000000, "email": "c@example.com", "error_related_to": "content", "error": "spam"}
]');

-- SparkPost policy_rejection: the suppression list (bounce class 25) is hard
SELECT event, bounce_type, email FROM broadcast._events_sparkpost('[
 {"msys": {"message_event": {"type": "policy_rejection", "rcpt_to": "a@example.com", "bounce_class": "25",
   "reason": "550 5.7.1 Recipient address was suppressed due to customer policy", "transmission_id": "t1",
   "rcpt_meta": {"message_id": "00000000-0000-4000-8000-000000000001"}, "timestamp": "1700000000"}}},
 {"msys": {"message_event": {"type": "policy_rejection", "rcpt_to": "b@example.com", "bounce_class": "71",
   "reason": "550 5.7.1 [internal] Generation rejection", "transmission_id": "t1", "timestamp": "1700000000"}}}
]');

-- Mailgun: a complaint-driven suppression is a complaint, not a hard bounce
SELECT event, bounce_type, email FROM broadcast._events_mailgun('[
 {"event-data": {"event": "failed", "severity": "permanent", "reason": "suppress-complaint",
  "recipient": "a@example.com", "timestamp": 1700000000}},
 {"event-data": {"event": "failed", "severity": "permanent", "reason": "suppress-unsubscribe",
  "recipient": "b@example.com", "timestamp": 1700000000}},
 {"event-data": {"event": "failed", "severity": "permanent", "reason": "suppress-bounce",
  "recipient": "c@example.com", "timestamp": 1700000000}}
]');

-- ------------------------------------------------------------------------
-- SendGrid signed event webhooks: ECDSA P-256 over timestamp || raw body
-- ------------------------------------------------------------------------
\set sg_key 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMfRQbCAGlpolPBf07uIBtanH77RX0O0EaDn5/TfOTfjVrZFK2yREUBpcPbJ3ilHyd4wpp1QNTohD4/X8apotcQ=='
\set sg_sig 'MEQCIGYvPHQzyTS7WRoAln6U9OwWN1zQMZHqcZ5QCLcfyFKZAiAsadCN287nmAkpmLbCF11sMtRzmYyjA0jkLD8o0vkYkQ=='
\set sg_body '[{"email":"alice@example.com","event":"dropped","reason":"Bounced Address","sg_message_id":"sgm1","message_id":"00000000-0000-4000-8000-000000000001","timestamp":1700000000}]'
SELECT broadcast.create_workspace('sgs', 'sgs');
SELECT broadcast.create_list('sgs', 'news', 'News');
SELECT broadcast.subscribe('sgs', 'news', ARRAY['alice@example.com']);
SELECT broadcast.create_integration('sgs', 'esp', 'sendgrid', '{}', 'key');
INSERT INTO broadcast.message_history
	(workspace_id, message_id, broadcast_id, template_id, variation, list_id, email, integration_id,
	 provider, provider_message_id, status, sent_at)
VALUES ('sgs', '00000000-0000-4000-8000-000000000001', 'b', 't', 0, 'news', 'alice@example.com', 'esp',
		'sendgrid', 'sgm1', 'sent', '2023-11-14 22:00:00+00');
-- keys that are not a P-256 public key are refused, and nothing is stored
SELECT broadcast.set_webhook_secret('sgs', 'esp', 'not base64!');
SELECT broadcast.set_webhook_secret('sgs', 'esp', 'c2VjcmV0');
SELECT webhook_secret FROM broadcast.integration_secrets WHERE workspace_id = 'sgs';
SELECT broadcast.set_webhook_secret('sgs', 'esp', :'sg_key');
-- without the headers, with a wrong signature, with a changed body: refused
SELECT received FROM broadcast.record_webhook('sgs', 'esp', :'sg_body', '{}');
SELECT received FROM broadcast.record_webhook('sgs', 'esp', :'sg_body',
	jsonb_build_object('X-Twilio-Email-Event-Webhook-Signature', 'MEQCIGYvPHQzyTS7WRoAln6U9OwWN1zQMZHqcZ5QCLcfyFKZAiAsadCN287nmAkpmLbCF11sMtRzmYyjA0jkLD8o0vkYkQ==',
					   'X-Twilio-Email-Event-Webhook-Timestamp', '1700000001'));
SELECT received FROM broadcast.record_webhook('sgs', 'esp', replace(:'sg_body', 'Bounced Address', 'Invalid'),
	jsonb_build_object('X-Twilio-Email-Event-Webhook-Signature', :'sg_sig',
					   'X-Twilio-Email-Event-Webhook-Timestamp', '1700000000'));
-- the parsed payload alone cannot be verified
SELECT received FROM broadcast.record_events('sgs', 'esp', :'sg_body'::jsonb);
SELECT bounced_at IS NOT NULL AS bounced FROM broadcast.message_history WHERE workspace_id = 'sgs';
-- the signed body applies: the dropped bounced address is a hard bounce, suppressed
SELECT received, applied, suppressed FROM broadcast.record_webhook('sgs', 'esp', :'sg_body',
	jsonb_build_object('x-twilio-email-event-webhook-signature', :'sg_sig',
					   'x-twilio-email-event-webhook-timestamp', '1700000000'));
SELECT bounce_type, bounced_at IS NOT NULL AS bounced FROM broadcast.message_history WHERE workspace_id = 'sgs';
-- an old signature is refused under the default tolerance (how old depends on the clock)
RESET broadcast_engine.webhook_tolerance;
\set VERBOSITY terse
SELECT received FROM broadcast.record_webhook('sgs', 'esp', :'sg_body',
	jsonb_build_object('X-Twilio-Email-Event-Webhook-Signature', :'sg_sig',
					   'X-Twilio-Email-Event-Webhook-Timestamp', '1700000000'));
\set VERBOSITY default
-- Postmark still refuses a key: its webhooks are not signed
SELECT broadcast.create_integration('sgs', 'pm', 'postmark', '{}', 'key');
SELECT broadcast.set_webhook_secret('sgs', 'pm', :'sg_key');

-- rate_limits() has the pause's reason
SELECT 'paused_reason' = ANY (proargnames) AS has_reason FROM pg_proc WHERE oid = 'broadcast.rate_limits()'::regprocedure;

-- the key as a PEM "PUBLIC KEY" (the SDKs' form) verifies the same; a changed body does not
SELECT broadcast._ecdsa_verify(E'-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMfRQbCAGlpolPBf07uIBtanH77RX\n0O0EaDn5/TfOTfjVrZFK2yREUBpcPbJ3ilHyd4wpp1QNTohD4/X8apotcQ==\n-----END PUBLIC KEY-----\n', convert_to('1700000000' || :'sg_body', 'UTF8'),
							   decode(:'sg_sig', 'base64')) AS pem_verifies,
	   broadcast._ecdsa_verify(:'sg_key', convert_to('1700000001' || :'sg_body', 'UTF8'),
							   decode(:'sg_sig', 'base64')) AS other_timestamp_verifies;

-- resume_integration: an integration that is not paused has nothing to end
SELECT broadcast.resume_integration('sgs', 'esp');
SELECT broadcast.resume_integration('sgs', 'nope');

SELECT broadcast.drop_workspace('sgs');
