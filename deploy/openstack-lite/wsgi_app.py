"""Gunicorn application factory for the OpenStack services' WSGI modules.

``gunicorn 'wsgi_app:load("keystone.wsgi.api")'``. Two things the plain
module path would get wrong:

- OpenStack's WSGI modules parse ``sys.argv`` with oslo.config when they are
  imported, and reject gunicorn's own options: argv is cut to the program name.
- neutron-server's ``get_ports`` reads the backref ``Port.port_forwardings``
  before any query has configured the SQLAlchemy mappers; when the first call
  a fresh neutron-server gets is Nova's port listing, it fails with
  ``AttributeError``. Configuring the mappers once after loading avoids it.
"""

import importlib
import sys


def load(module, attribute="application"):
    sys.argv = sys.argv[:1]
    application = getattr(importlib.import_module(module), attribute)
    if "sqlalchemy.orm" in sys.modules:
        from sqlalchemy import orm  # noqa: PLC0415 - only once SQLAlchemy is in use

        orm.configure_mappers()
    return application
