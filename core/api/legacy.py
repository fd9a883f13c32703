"""Staff: the legacy import (domain: :mod:`core.portability.legacy`).

``POST /v1/staff/legacy-imports?storefront=FR`` takes the CSV file itself as the body
(``Content-Type: text/csv``). A file with problems answers 422 problem+json listing them all in
``errors`` (``line``, ``field``, ``code``, ``message`` in the caller's language); nothing is
written. The import creates customer accounts: it is the ``staff.accounts`` action
(administrators), like importing a customer's export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Request, Response, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter, RawBody

from core.api.common import runtime, staff
from core.errors import UniversError
from core.i18n import N_
from core.portability import legacy
from core.uow import unit_of_work

MEDIA_TYPES = ("text/csv", "text/plain", "application/csv", "application/octet-stream")
MAX_BODY = 64 * 1024 * 1024  # about 250,000 rows; larger files go through the CLI


class UnsupportedMediaType(UniversError):
    status = 415
    code = "unsupported_media_type"
    template = N_("Send the file as CSV (Content-Type: text/csv).")


class LegacyImportRead(msgspec.Struct):
    storefront: str
    rows: int  # service rows in the file
    imported: int  # services created now
    already_imported: int  # rows imported by an earlier run: skipped
    customers_created: int
    customers_reused: int  # existing accounts that received services (as holder or contact)


@dataclass
class LegacyImportOperation(Operation):
    """The OpenAPI operation: the body is the CSV file, read by the handler itself."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, description="The legacy services, one per row (see the README: Switching customers to the new "
                                       "contract, Legacy import)",
            content={"text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))})


@post("/v1/staff/legacy-imports", sync_to_thread=True, opt={"scope": "account:write", "body_media_types": MEDIA_TYPES}, tags=["staff"], status_code=201,
      operation_class=LegacyImportOperation, request_max_body_size=MAX_BODY)
def import_legacy_services(request: Request, body: RawBody,
                           storefront: Annotated[str, QueryParameter(min_length=2, max_length=4,
                                                                     description="The storefront the services are sold in")],
                           ) -> Response[LegacyImportRead]:
    """Staff (administrators): import services from the old billing system, all or nothing.
    They arrive active, renewed by hand, on the legacy terms, paid and billed through their
    `expires_on`; nothing is provisioned or invoiced. Unknown customers are created. A row
    imported before is skipped (`already_imported`), so the same file can be sent again:
    201 when services were created, 200 when there was nothing new."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.accounts")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media not in MEDIA_TYPES:
            raise UnsupportedMediaType()
        done = legacy.import_services(conn, rt, storefront, body, actor, locale=locale)
    return Response(LegacyImportRead(**done.as_dict()), status_code=201 if done.imported else 200)


ROUTES = [import_legacy_services]
