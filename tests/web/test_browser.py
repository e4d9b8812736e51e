"""The web client in real headless Chromium: two (and three) people in separate
browser contexts, against a real ``sandcat serve``.

Run by ``nox -s browser`` (Debian's chromium, Playwright for Python driving it).
The run saves screenshots of the main screens to docs/screenshots/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.web.conftest import SCREENSHOTS, Served, browser_only

pytestmark = [browser_only, pytest.mark.slow]

PASSWORD = "correct horse 1"
BLOB = re.compile(r"^blob:")
TIMEOUT_MS = 20_000


class Person:
    def __init__(self, browser: Any, served: Served, name: str, **context: Any) -> None:
        from playwright.sync_api import expect

        expect.set_options(timeout=TIMEOUT_MS)
        self.expect = expect
        self.name = name
        self.context = browser.new_context(viewport={"width": 1100, "height": 720}, **context)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: message.type == "error" and self.errors.append(message.text),
        )
        self.base_url = served.base_url

    def open(self) -> None:
        self.page.goto(self.base_url + "/")

    def register(self) -> None:
        self.open()
        self.page.click("#auth-switch")
        self.page.fill("#auth-username", self.name)
        self.page.fill("#auth-password", PASSWORD)
        self.page.click("#auth-submit")
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.wait_for_selector("body[data-ready=true]")

    def tab(self, name: str) -> None:
        self.page.click(f"#tab-{name}")

    def befriend(self, other: Person) -> None:
        self.tab("contacts")
        self.page.fill("#search-users", other.name)
        self.page.press("#search-users", "Enter")
        add = self.page.locator(f"#search-results button[data-user={other.name}]")
        add.click()
        self.expect(add).to_have_text("Requested")
        other.tab("contacts")
        other.page.click(f"#requests button[data-accept={self.name}]")
        other.expect(other.page.locator(f"#friends [data-friend={self.name}]")).to_be_visible()

    def open_direct(self, other: Person) -> None:
        self.tab("contacts")
        self.page.click(f"#friends [data-friend={other.name}]")
        self.expect(self.page.locator("#chat-title")).to_have_text(other.name)

    def open_conv(self, title: str) -> None:
        self.tab("chats")
        self.conv(title).click()
        self.expect(self.page.locator("#chat-title")).to_have_text(title)

    def conv(self, title: str) -> Any:
        return self.page.locator(f'#conv-list button.conv:has(.conv-name:text-is("{title}"))')

    def say(self, text: str) -> None:
        self.page.fill("#composer", text)
        self.page.press("#composer", "Enter")
        self.expect(self.message(text)).to_be_visible()

    def message(self, text: str) -> Any:
        return self.page.locator("#messages li.msg", has_text=text)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def make_png(path: Path) -> Path:
    image = Image.new("RGB", (640, 400), (201, 139, 60))
    for x in range(640):
        for y in range(150, 250):
            image.putpixel((x, y), (255, 244, 227))
    image.save(path)
    return path


def test_two_people_chat_in_the_browser(browser: Any, served: Served, tmp_path: Path) -> None:
    alice = Person(browser, served, "alice")
    bob = Person(browser, served, "bob")
    carol = Person(browser, served, "carol")
    alice.open()
    alice.page.wait_for_selector("#auth-username")
    alice.shot("login")
    for person in (alice, bob, carol):
        person.register()

    # Friends: a search, a request, an accept.
    alice.befriend(bob)
    bob.tab("inbox")
    bob.expect(bob.page.locator("#notices")).to_contain_text("alice sent you a friend request")

    # Chat both ways, with unread counts, typing and read receipts.
    alice.open_direct(bob)
    alice.say("hello bob")
    bob.tab("chats")
    bob.expect(bob.page.locator("#conv-list [data-unread='1']")).to_be_visible()
    bob.open_conv("alice")
    bob.expect(bob.message("hello bob")).to_be_visible()
    alice.expect(alice.page.locator("#messages [data-status=read]")).to_be_visible()
    bob.page.type("#composer", "hi al", delay=30)
    alice.expect(alice.page.locator("#chat-subtitle")).to_have_text("bob is typing…")
    bob.page.type("#composer", "ice")
    bob.page.press("#composer", "Enter")
    alice.expect(alice.message("hi alice")).to_be_visible()
    alice.expect(alice.page.locator("#chat-subtitle")).to_have_text("online")

    # A reply and an emoji.
    alice.message("hi alice").hover()
    alice.message("hi alice").locator("[data-action=reply]").click()
    alice.say("how are you?")
    bob.expect(bob.message("how are you?").locator(".quote")).to_contain_text("hi alice")
    bob.page.click("#emoji")
    bob.page.click("#emoji-picker button[aria-label='👍']")
    bob.page.press("#composer", "Enter")
    alice.expect(alice.page.locator("#messages .body.emoji", has_text="👍")).to_be_visible()

    # An image: the receiver sees its thumbnail.
    alice.page.set_input_files("#attach", str(make_png(tmp_path / "dunes.png")))
    thumb = bob.page.locator("#messages img.thumb").last
    bob.expect(thumb).to_have_attribute("src", BLOB)
    bob.page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('#messages img.thumb')].pop();"
        " return i && i.complete && i.naturalWidth > 0; }"
    )

    # A file: the receiver downloads it.
    notes = tmp_path / "packing-list.txt"
    notes.write_text("water, hats, sunscreen\n")
    alice.page.set_input_files("#attach", str(notes))
    attachment = bob.page.locator("#messages button.file", has_text="packing-list.txt")
    with bob.page.expect_download() as download:
        attachment.click()
    assert download.value.suggested_filename == "packing-list.txt"
    assert Path(download.value.path()).read_text() == "water, hats, sunscreen\n"

    # Edit and recall.
    alice.message("hello bob").hover()
    alice.message("hello bob").locator("[data-action=edit]").click()
    alice.page.fill("#composer", "hello bob!")
    alice.page.press("#composer", "Enter")
    bob.expect(bob.message("hello bob!")).to_contain_text("edited")
    bob.say("oops, wrong chat")
    bob.message("oops, wrong chat").hover()
    bob.message("oops, wrong chat").locator("[data-action=recall]").click()
    alice.expect(alice.page.locator("#messages li.recalled")).to_contain_text(
        "This message was recalled"
    )
    alice.expect(alice.message("oops, wrong chat")).to_have_count(0)
    alice.shot("chat")

    # A group, and a third person invited into it: mentions, receipts, roles, an announcement.
    alice.befriend(carol)
    alice.tab("contacts")
    alice.page.click("#new-group")
    alice.page.fill("#group-name", "Dune trip")
    alice.page.check("[data-member=bob]")
    alice.page.click("#create-group")
    alice.expect(alice.page.locator("#chat-title")).to_have_text("Dune trip")
    alice.page.click("#group-info")
    alice.expect(alice.page.locator("#members li")).to_have_count(2)
    alice.page.select_option("#invite-select", label="carol")
    alice.page.click("#invite")
    alice.expect(alice.page.locator("#members li")).to_have_count(3)
    alice.page.keyboard.press("Escape")
    alice.expect(alice.page.locator("#group-panel")).to_be_hidden()
    alice.page.fill("#composer", "hi team, @bo")
    alice.page.click("#mention-suggestions [data-mention=bob]")
    alice.page.type("#composer", "bring water")
    alice.page.press("#composer", "Enter")
    alice.expect(alice.message("bring water")).to_be_visible()
    bob.tab("chats")
    bob.expect(bob.conv("Dune trip").locator(".mention-badge")).to_be_visible()
    carol.tab("chats")
    carol.open_conv("Dune trip")
    carol.expect(carol.message("bring water")).to_be_visible()
    carol.say("on it")
    alice.expect(alice.message("on it")).to_be_visible()
    alice.message("bring water").hover()
    alice.message("bring water").locator("[data-action=readers]").click()
    alice.expect(alice.page.locator("#toast")).to_contain_text("Seen by carol")
    alice.page.click("#group-info")
    alice.page.click("#members li[data-member=bob] [data-role=admin]")
    alice.expect(alice.page.locator("#members li[data-member=bob] .role")).to_have_text("admin")
    alice.page.fill("#announcement-input", "Meet at the oasis at 6")
    alice.page.click("#save-announcement")
    carol.expect(carol.page.locator("#announcement")).to_contain_text("Meet at the oasis at 6")
    alice.shot("group")
    # "@all" (an entry of MSG's mentions, like a user id) marks the group for a member
    # who is reading another conversation.
    carol.open_conv("alice")
    alice.page.keyboard.press("Escape")
    alice.say("@all dinner at 8")
    carol.expect(carol.conv("Dune trip").locator(".mention-badge")).to_be_visible()

    # Pin and mute: the pinned conversation leads the list.
    bob.conv("alice").click()
    bob.page.click("#pin")
    bob.expect(bob.page.locator("#conv-list li").first).to_contain_text("alice")
    bob.expect(bob.conv("alice")).to_contain_text("📌")
    bob.open_conv("Dune trip")
    bob.page.click("#mute")
    bob.expect(bob.conv("Dune trip")).to_contain_text("🔕")

    # Enough messages for two pages of history.
    alice.open_conv("bob")
    for n in range(1, 33):
        alice.page.fill("#composer", f"note {n}")
        alice.page.press("#composer", "Enter")
    alice.expect(alice.message("note 32")).to_be_visible()

    # Bob reloads: the list and the history come back from the server.
    bob.page.reload()
    bob.wait_ready()
    to_list_ms = bob.page.evaluate(
        "performance.getEntriesByName('sandcat-conversations')[0].startTime"
    )
    timing = f"page load to conversation list: {to_list_ms:.0f} ms"
    print("\n" + timing)
    (SCREENSHOTS / "timing.txt").write_text(timing + "\n")
    bob.shot("conversations")
    bob.expect(bob.page.locator("#conv-list li").first).to_contain_text("alice")
    bob.open_conv("alice")
    bob.expect(bob.message("note 32")).to_be_visible()
    bob.expect(bob.message("hello bob!")).to_have_count(0)
    bob.expect(bob.page.locator("#load-older")).to_be_visible()
    # Scrolling to the top loads the page before (as the button does).
    bob.page.eval_on_selector("#messages", "list => { list.scrollTop = 0; }")
    bob.expect(bob.message("hello bob!")).to_be_visible()
    bob.expect(bob.page.locator("#load-older")).to_have_count(0)
    bob.expect(bob.message("how are you?")).to_be_visible()

    # A voice note round-trips.
    alice.page.click("#voice")
    time.sleep(1.5)
    alice.page.click("#voice")
    voice = bob.page.locator("#messages audio.voice").last
    bob.expect(voice).to_have_attribute("src", BLOB)
    # The recording decodes in the receiver's browser (metadata loaded from the blob).
    bob.page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('#messages audio.voice')].pop();"
        " return a && a.readyState >= 1; }"
    )

    # Phone-sized screen.
    bob.page.set_viewport_size({"width": 390, "height": 780})
    bob.shot("phone-chat")
    bob.page.click("#chat .back")
    bob.shot("phone-list")
    bob.page.set_viewport_size({"width": 1100, "height": 720})
    bob.tab("inbox")
    bob.shot("inbox")

    for person in (alice, bob, carol):
        assert person.errors == [], person.errors
        person.context.close()


def test_a_call_reaches_ice_connected(browser: Any, served: Served) -> None:
    dana = Person(browser, served, "dana")
    eli = Person(browser, served, "eli")
    dana.register()
    eli.register()
    dana.befriend(eli)
    dana.open_direct(eli)
    with dana.page.expect_response(lambda r: r.url.endswith("/api/v1/calls/turn")) as turn:
        dana.page.click("#call-video")
    assert turn.value.status == 200
    eli.page.click("#call-accept")
    for person in (dana, eli):
        person.expect(person.page.locator("#call")).to_have_attribute("data-ice", "connected")
    eli.page.wait_for_function("() => document.getElementById('remote-video').videoWidth > 0")
    eli.shot("call")
    dana.page.click("#call-hangup")
    eli.expect(eli.page.locator("#call-status")).to_contain_text("completed")
    dana.expect(dana.page.locator("#messages")).to_contain_text("Video call · completed")
    for person in (dana, eli):
        assert person.errors == [], person.errors
        person.context.close()
