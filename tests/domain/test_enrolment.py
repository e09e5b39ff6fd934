"""Invite codes as the enrolment rules make them."""

from __future__ import annotations

from collections.abc import Iterator

from domain.enrolment import code_is_well_formed, new_invite_code


def test_a_new_code_never_begins_with_a_dash_which_a_command_line_takes_for_an_option() -> None:
    drawn: Iterator[str] = iter(["-KMNcs7UuQeohuPy", "--Mcs7UuQeohuPy0", "aKMNcs7UuQeohu-y"])
    sizes: list[int] = []

    def token(size: int) -> str:
        sizes.append(size)
        return next(drawn)

    assert new_invite_code(token) == "aKMNcs7UuQeohu-y"
    assert sizes == [12, 12, 12]  # 96 random bits each time


def test_real_codes_are_well_formed_and_dashless_at_the_start() -> None:
    codes = {new_invite_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(code_is_well_formed(c) and len(c) == 16 and c[0] != "-" for c in codes)
