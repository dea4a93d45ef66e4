"""Email over SMTP: the standard library's smtplib, run in a worker thread.

smtplib rather than an asyncio SMTP client: it speaks STARTTLS, implicit TLS and AUTH as
every relay expects, needs no extra dependency, and one message per notification is not a
throughput problem. Its blocking I/O runs in a thread (never on the event loop), bounded by
a socket timeout, so a relay that hangs holds one thread for at most that long.

4xx answers and network errors are tried again; 5xx answers (a refused recipient, a failed
login) are not. The Message-ID is derived from the notification's id, so a mail system
sees a repeat as the same message.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from agent.notifications.services.base import DeliveryFailed, Message, read_secret, redact
from agent.notifications.settings import EmailSecurity, EmailService


async def send_email(service: EmailService, message: Message, *, socket_timeout: float) -> None:
    if "@" not in message.recipient:
        raise DeliveryFailed(f"{message.recipient!r} is not an email address", retry=False)
    password = ""
    if service.password_env or service.password_file:
        password = read_secret(env=service.password_env, file=service.password_file, what="password")
    email = _email(service, message)
    await asyncio.to_thread(_send, service, email, password, socket_timeout)


def _email(service: EmailService, message: Message) -> EmailMessage:
    email = EmailMessage()
    email["From"] = service.sender
    email["To"] = message.recipient
    email["Subject"] = " ".join((message.subject or message.text.split("\n", 1)[0]).split())  # one header line
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = f"<{message.id}@gitops-agent>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    return email


def _send(service: EmailService, email: EmailMessage, password: str, timeout: float) -> None:
    try:
        _exchange(service, email, password, timeout)
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryFailed(redact(f"SMTP {exc.smtp_code}: {text}", [password]),
                             retry=400 <= exc.smtp_code < 500) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryFailed(f"recipient refused (SMTP {', '.join(map(str, codes))})",
                             retry=all(400 <= code < 500 for code in codes)) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryFailed(f"the server does not support it: {exc}", retry=False) from exc
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryFailed(f"TLS certificate not trusted: {exc.verify_message}", retry=False) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts
        raise DeliveryFailed(redact(f"{type(exc).__name__}: {exc}", [password]), retry=True) from exc


def _exchange(service: EmailService, email: EmailMessage, password: str, timeout: float) -> None:
    context = ssl.create_default_context(cafile=service.ca_file or None)
    smtp: smtplib.SMTP
    if service.security is EmailSecurity.TLS:
        smtp = smtplib.SMTP_SSL(service.host, service.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(service.host, service.port, timeout=timeout)
    with smtp:
        smtp.ehlo()
        if service.security is EmailSecurity.STARTTLS:
            smtp.starttls(context=context)
            smtp.ehlo()
        if service.username:
            smtp.login(service.username, password)
        smtp.send_message(email)
