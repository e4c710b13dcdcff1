"""Several instances share rate limits through Redis (deploy/README.md, "Several instances").

No Redis server runs here; what is tested is the part an operator can get
wrong: the documented setting is accepted, and a Redis outage never stops a
person from reaching the association (limits fall back to memory).
"""

from __future__ import annotations

from tests.nginx import free_port
from tests.service.helpers import JSON, post, support_form


def test_the_documented_redis_setting_works_even_while_redis_is_down(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    response = post(app.test_client(), "support", support_form(), headers=JSON)
    assert response.status_code == 202, response.get_json()
