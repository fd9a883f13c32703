"""The Manager: the web console for customers (``/manager/``) and back-office staff (``/backoffice/``).

A thin, server-rendered layer in the same Litestar app as the API: Jinja templates, htmx for the
clicks that change one part of a page (vendored in ``static/``, no JavaScript build step), and
every action the same domain operation the API calls, checked against the same permission table
(:mod:`core.access`). A visitor signs in with an API key; the browser keeps a session cookie
(HttpOnly, SameSite=Lax) and every form carries the session's CSRF token
(:mod:`core.console.session`). Texts go through the Babel catalogs; money and dates are
formatted from CLDR in the reader's language (:mod:`core.console.render`).
"""
