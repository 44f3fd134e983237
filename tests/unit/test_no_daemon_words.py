"""skiff has no daemon: no message may blame one (Docker's wording after the prefix is kept)."""

from pathlib import Path

import skiff


def test_no_message_says_error_response_from_daemon() -> None:
    package = Path(skiff.__file__).parent
    saying = [str(p.relative_to(package)) for p in package.rglob("*.py") if "response from daemon" in p.read_text()]
    assert not saying, f"these modules print 'Error response from daemon': {saying}"
