"""The console's labels in English and Vietnamese.

Every label has a key; :data:`LABELS` holds those of the frame (navigation, login, errors) and each page module
its own ``LABELS``, merged by :func:`gateway.console.build_labels`. A template writes ``t("key")``; a key with no
label is an error at render time (``KeyError``), so a missing translation never shows up as a blank.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LANGUAGES", "LABELS", "Translator"]

LANGUAGES = {"en": "English", "vi": "Tiếng Việt"}
"""The languages an operator may pick, by code."""

LABELS: dict[str, tuple[str, str]] = {
    "app.title": ("NSW gateway console", "Bảng điều khiển cổng NSW"),
    "nav.overview": ("Overview", "Tổng quan"),
    "nav.messages": ("Messages", "Thông điệp"),
    "nav.dead_letters": ("Dead letters", "Thư chết"),
    "nav.partners": ("Partners", "Đối tác"),
    "nav.procedures": ("Procedures", "Thủ tục"),
    "nav.origin": ("Certificates of origin", "C/O"),
    "nav.reference": ("Reference lists", "Danh mục tham chiếu"),
    "nav.disclosures": ("Disclosures", "Dữ liệu đã chia sẻ"),
    "nav.certificates": ("Certificates", "Chứng thư số"),
    "nav.logout": ("Log out", "Đăng xuất"),
    "nav.signed_in_as": ("Signed in as", "Đăng nhập với"),
    "nav.language": ("Language", "Ngôn ngữ"),
    "login.title": ("Operator login", "Đăng nhập quản trị"),
    "login.token": ("Operator token", "Mã truy cập quản trị"),
    "login.submit": ("Log in", "Đăng nhập"),
    "login.hint": (
        "Use an [operators] token of this gateway, or the one-time link printed by nswgw console-url.",
        "Dùng mã [operators] của cổng này, hoặc liên kết dùng một lần do nswgw console-url in ra.",
    ),
    "login.failed": ("That token opens no operator account.", "Mã này không thuộc tài khoản quản trị nào."),
    "login.link_invalid": (
        "This login link is unknown, expired or already used.",
        "Liên kết đăng nhập không tồn tại, đã hết hạn hoặc đã được dùng.",
    ),
    "error.title": ("Refused", "Bị từ chối"),
    "error.code": ("Code", "Mã lỗi"),
    "error.back": ("Back to the overview", "Quay lại tổng quan"),
    "common.none": ("none", "không có"),
    "common.at": ("At", "Lúc"),
    "common.code": ("Code", "Mã"),
    "common.party": ("Party", "Bên"),
    "common.destination": ("Destination", "Đích"),
    "common.sender": ("Sender", "Bên gửi"),
    "common.state": ("State", "Trạng thái"),
    "common.document_type": ("Document type", "Loại chứng từ"),
    "common.filter": ("Filter", "Lọc"),
    "common.next_page": ("Older", "Cũ hơn"),
    "common.days_left": ("Days left", "Số ngày còn lại"),
    "common.updated": ("Updated", "Cập nhật"),
}


class Translator:
    """``t(key)``: the label of ``key`` in one language."""

    def __init__(self, labels: Mapping[str, tuple[str, str]], language: str) -> None:
        self.labels = labels
        self.language = language if language in LANGUAGES else "en"
        self._index = list(LANGUAGES).index(self.language)

    def __call__(self, key: str) -> str:
        return self.labels[key][self._index]
