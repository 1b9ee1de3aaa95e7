"""Provider mocks for mock_provider.py: one module per provider API."""

from .brevo import Brevo
from .mailgun import Mailgun
from .mailjet import Mailjet
from .postmark import Postmark
from .resend import Resend
from .sendgrid import SendGrid
from .ses import SES
from .sparkpost import SparkPost

ALL = [SendGrid, Mailgun, Postmark, SES, SparkPost, Mailjet, Resend, Brevo]
