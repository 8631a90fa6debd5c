"""YouTube links in every form people paste them, and everything else refused."""

from __future__ import annotations

import pytest

from set2tracks.errors import InvalidInput
from set2tracks.sets.submissions import ACCEPTED_LINKS, clean_upload_name, parse_video_id

VIDEO = "dQw4w9WgXcQ"
ACCEPTED = [
    VIDEO,
    f"  {VIDEO}\n",
    f"https://www.youtube.com/watch?v={VIDEO}",
    f"http://www.youtube.com/watch?v={VIDEO}",
    f"www.youtube.com/watch?v={VIDEO}",
    f"youtube.com/watch?v={VIDEO}",
    f"https://youtube.com/watch?v={VIDEO}",
    f"https://m.youtube.com/watch?v={VIDEO}",
    f"https://music.youtube.com/watch?v={VIDEO}&feature=share",
    f"https://WWW.YouTube.com/watch?v={VIDEO}",
    f"https://www.youtube.com/watch?v={VIDEO}&t=3723s",
    f"https://www.youtube.com/watch?t=1h2m3s&v={VIDEO}",
    f"https://www.youtube.com/watch?v={VIDEO}&list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&index=3",
    f"https://www.youtube.com/watch?v={VIDEO}&si=AbCdEfGhIjKlMnOp",
    f"https://www.youtube.com/watch?feature=youtu.be&v={VIDEO}",
    f"https://www.youtube.com/watch?v={VIDEO}#t=60",
    f"https://youtu.be/{VIDEO}",
    f"http://youtu.be/{VIDEO}",
    f"youtu.be/{VIDEO}",
    f"https://youtu.be/{VIDEO}?t=42",
    f"https://youtu.be/{VIDEO}?si=AbCdEfGhIjKlMnOp",
    f"https://youtu.be/{VIDEO}/",
    f"https://www.youtube.com/live/{VIDEO}",
    f"https://www.youtube.com/live/{VIDEO}?si=AbCdEfGhIjKlMnOp&feature=share",
    f"https://youtube.com/shorts/{VIDEO}",
    f"https://www.youtube.com/shorts/{VIDEO}?feature=share",
    f"https://www.youtube.com/embed/{VIDEO}",
    f"https://www.youtube.com/embed/{VIDEO}?start=30&autoplay=1",
    f"https://www.youtube-nocookie.com/embed/{VIDEO}",
    f"//www.youtube.com/watch?v={VIDEO}",
    f"https://www.youtube.com:443/watch?v={VIDEO}",
    f"https://www.youtube.com./watch?v={VIDEO}",
]
REFUSED = [
    "",
    "   ",
    "dQw4w9WgXc",  # 10 characters
    "dQw4w9WgXcQQ",  # 12
    "dQw4w9WgX!Q",
    "hello world",
    "https://www.youtube.com/",
    "https://www.youtube.com/watch",
    "https://www.youtube.com/watch?v=",
    "https://www.youtube.com/watch?v=tooshort",
    f"https://www.youtube.com/watch?v={VIDEO}x",
    "https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG",
    "https://www.youtube.com/@boilerroom",
    "https://www.youtube.com/channel/UCGBpxWJr9FNOcFYA5GkKrMg",
    f"https://www.youtube.com/watch/{VIDEO}",
    f"https://www.youtube.com/live/{VIDEO}/extra",
    f"https://youtu.be/{VIDEO}/extra",
    f"https://youtu.be/watch?v={VIDEO}",
    f"https://youtube.com.evil.example/watch?v={VIDEO}",
    f"https://notyoutube.com/watch?v={VIDEO}",
    f"https://evil.example/youtube.com/watch?v={VIDEO}",
    f"https://evil.example/?u=https://youtu.be/{VIDEO}",
    f"https://www.youtube.com@evil.example/watch?v={VIDEO}",
    f"https://user:pass@www.youtube.com/watch?v={VIDEO}",
    f"https://www.youtube.com:8080/watch?v={VIDEO}",
    f"https://www.youtube.com:notaport/watch?v={VIDEO}",
    f"ftp://www.youtube.com/watch?v={VIDEO}",
    f"javascript://www.youtube.com/watch?v={VIDEO}",
    f"https://vimeo.com/{VIDEO}",
    f"https://soundcloud.com/dj/{VIDEO}",
    "https://[::1/watch?v=dQw4w9WgXcQ",
    f"https://www.youtube.com/watch?v={VIDEO}&x=" + "a" * 600,
]


@pytest.mark.parametrize("link", ACCEPTED)
def test_every_common_form_of_a_youtube_link_gives_its_video_id(link: str) -> None:
    assert parse_video_id(link) == VIDEO


def test_ids_keep_their_dashes_underscores_and_case() -> None:
    assert parse_video_id("https://youtu.be/a-B_c9D0eF1") == "a-B_c9D0eF1"
    assert parse_video_id("A_b-C9d0Ef1") == "A_b-C9d0Ef1"


@pytest.mark.parametrize("link", REFUSED)
def test_anything_else_is_refused_with_what_is_accepted(link: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_video_id(link)

    assert refused.value.status == 422
    assert refused.value.detail == ACCEPTED_LINKS
    assert "youtu.be" in ACCEPTED_LINKS
    assert "11-character" in ACCEPTED_LINKS
    assert refused.value.fields == {"url": [ACCEPTED_LINKS]}


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("Live at Fabric.mp3", "Live at Fabric.mp3"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\dj\\Mixes\\Sunset.flac", "Sunset.flac"),
        ("Café del Mar — Sunset.flac", "Café del Mar — Sunset.flac"),
        ("bad\x00name\r\n\x1b[31m.mp3", "badname[31m.mp3"),
        ("   spaced    out .wav  ", "spaced out .wav"),
        ("", "upload"),
        (None, "upload"),
        ("/", "upload"),
        ("a" * 400 + ".mp3", "a" * 255),
    ],
)
def test_upload_names_are_cleaned_for_display(sent: str | None, shown: str) -> None:
    assert clean_upload_name(sent) == shown
