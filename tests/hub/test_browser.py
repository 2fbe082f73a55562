"""The dashboard in a real headless Chromium (Debian's, driven by Selenium):
log in, open a collection, choose two places, test them, list and select
a subset, preview, start a sync, watch the progress bar reach its end and
the log say done, and find the files where they should be."""

from __future__ import annotations

import uuid

import pytest
from test_dashboard import person, seeded

from accord.hub.places import add_place, remove_place

EVIL = "<script>alert(1)</script>.txt"


@pytest.fixture
def wait(web_browser):
    from selenium.webdriver.support.ui import WebDriverWait

    def until(check, seconds: float = 60):
        return WebDriverWait(web_browser, seconds, poll_frequency=0.1).until(
            lambda driver: check()
        )

    return until


def test_a_sync_started_and_watched_in_a_browser(
    hub_server, tmp_path, web_browser, wait
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    files = {"keep/a.txt": "a", "keep/b.txt": "bb", "other.txt": "o", EVIL: "x"}
    collection = seeded(hub_server, tmp_path, files)
    name, password = person(hub_server, collection, "write")
    target = tmp_path / "target"
    target.mkdir()
    place = "b" + uuid.uuid4().hex[:6]
    add_place(hub_server.folder, place, str(target), [name])
    driver = web_browser
    find = driver.find_element
    try:
        # log in
        driver.get(hub_server.base + "/")
        find(By.ID, "user").send_keys(name)
        find(By.ID, "password").send_keys(password)
        find(By.ID, "submit").click()
        wait(lambda: driver.find_elements(By.ID, "collections"))
        assert find(By.CSS_SELECTOR, "header .who").text == name
        # open the collection: every name is text, nothing runs
        find(By.LINK_TEXT, collection).click()
        wait(lambda: driver.find_elements(By.ID, "content"))
        assert find(By.ID, "name").text == collection
        assert EVIL in find(By.ID, "content").text
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        wait(lambda: find(By.TAG_NAME, "body").get_attribute("data-live") == "yes")
        # both sides: this collection, and the place the admin named
        assert Select(find(By.ID, "left")).first_selected_option.get_attribute(
            "value"
        ) == f"collection:{collection}"
        Select(find(By.ID, "right")).select_by_value(f"place:{place}")
        Select(find(By.ID, "mode")).select_by_value("mirror")
        find(By.ID, "test-left").click()
        find(By.ID, "test-right").click()
        wait(lambda: find(By.ID, "left-status").text.startswith("ok: 4 files"))
        wait(lambda: find(By.ID, "right-status").text.startswith("ok: 0 files"))
        # list the items, filter, select a subset
        find(By.ID, "list").click()
        wait(lambda: "of 4 selected" in find(By.ID, "item-count").text)
        keys = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#items td.key")]
        assert sorted(keys) == sorted(files)
        find(By.ID, "filter").send_keys("keep/")
        find(By.ID, "select-shown").click()
        assert find(By.ID, "item-count").text == "2 of 4 selected"
        # preview: the engine's plan of that subset
        find(By.ID, "preview").click()
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#plan-actions li"))
        planned = find(By.ID, "plan-actions").text
        assert "copy keep/a.txt (right)" in planned
        assert "other.txt" not in planned and "script" not in planned
        assert not list(target.iterdir())  # a preview changes nothing
        # start, and watch it to the end
        find(By.ID, "start").click()
        bar = find(By.ID, "bar")
        wait(lambda: bar.get_attribute("data-finished") == "done")
        assert bar.get_attribute("value") == bar.get_attribute("max") == "3"
        log = find(By.ID, "log").text
        assert "done: copy keep/a.txt" in log
        assert log.strip().splitlines()[-1].startswith("done: 3 changed")
        assert find(By.ID, "progress-text").text.startswith("done: 3 of 3")
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
        # the overview: the collection, its size, the run in the history
        driver.get(hub_server.base + "/")
        wait(lambda: driver.find_elements(By.ID, "collections"))
        assert collection in find(By.ID, "collections").text
    finally:
        remove_place(hub_server.folder, place)
    # the files really arrived, and only those selected
    found = sorted(
        str(p.relative_to(target))
        for p in target.rglob("*")
        if p.is_file() and ".accord" not in p.parts
    )
    assert found == ["keep/a.txt", "keep/b.txt"]
    assert (target / "keep" / "b.txt").read_text() == "bb"
