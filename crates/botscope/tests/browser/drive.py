"""Drives Debian's headless Chromium through Debian's chromedriver against a running botscope.

Called by tests/web.rs with one argument, a JSON plan:
  base        the server, e.g. http://127.0.0.1:PORT
  pages       paths of the dashboard to open, each in both languages
  checks      {verdict: url} self-check URLs, each reaching the server from another loopback address
  isp_token   a token of one ISP, to sign in to the portal with
  other_isp   another ISP's handle, whose data the portal must not show
  shots       directory for the screenshots
  out         file the observations are written to (JSON)

It observes and records; tests/web.rs asserts against the store and the lab's truth.
"""

import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-default-apps",
        "--no-pings",
        # No host but 127.0.0.1 resolves: the pages are there, and nothing of the
        # browser's own (updates, safe browsing, metrics) can reach out.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,900",
        "--lang=en-US",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def submit(driver, button, then):
    """Clicks a form's button and waits until the next page has loaded and shows `then`: a click
    returns before the navigation it starts has finished."""
    old = driver.find_element(By.TAG_NAME, "html")
    button.click()
    wait = WebDriverWait(driver, 20)
    wait.until(EC.staleness_of(old))
    wait.until(EC.presence_of_element_located(then))


def console(driver):
    """Console messages since the last call (errors, warnings, CSP violations)."""
    return [
        {"level": e["level"], "message": e["message"]}
        for e in driver.get_log("browser")
        if e["level"] in ("SEVERE", "WARNING")
    ]


def marks(driver):
    """Every chart's marks: {chart id: [[series, label, value], ...]}."""
    charts = {}
    for svg in driver.find_elements(By.CSS_SELECTOR, "svg[data-chart]"):
        found = []
        for mark in svg.find_elements(By.CSS_SELECTOR, ".bar, .point"):
            found.append(
                [
                    mark.get_attribute("data-series"),
                    mark.get_attribute("data-label"),
                    float(mark.get_attribute("data-value")),
                ]
            )
        charts[svg.get_attribute("data-chart")] = found
    return charts


def shot(driver, shots, name):
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(900, min(int(height) + 40, 12000)))
    path = os.path.join(shots, name + ".png")
    driver.save_screenshot(path)
    driver.set_window_size(1280, 900)
    return path


def page_facts(driver):
    return {
        "url": driver.current_url,
        "lang": driver.find_element(By.TAG_NAME, "html").get_attribute("lang"),
        "title": driver.title,
        "h1": driver.find_element(By.TAG_NAME, "h1").text,
    }


def main():
    plan = json.load(open(sys.argv[1]))
    base, shots = plan["base"], plan["shots"]
    os.makedirs(shots, exist_ok=True)
    result = {"pages": [], "checks": [], "portal": {}}
    driver = browser()
    try:
        for path in plan["pages"]:
            for lang in ("en", "ja"):
                sep = "&" if "?" in path else "?"
                driver.get(f"{base}{path}{sep}lang={lang}")
                facts = page_facts(driver)
                facts.update(
                    path=path,
                    asked_lang=lang,
                    charts=marks(driver),
                    console=console(driver),
                    screenshot=shot(driver, shots, f"dashboard{path.replace('/', '_')}-{lang}"),
                )
                result["pages"].append(facts)
        # Keyboard: the first Tab reaches the skip link.
        driver.get(f"{base}/?lang=en")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        result["first_tab"] = driver.switch_to.active_element.get_attribute("class")
        console(driver)

        for verdict, url in sorted(plan["checks"].items()):
            for lang in ("en", "ja"):
                driver.get(f"{url}/check?lang={lang}")
                facts = page_facts(driver)
                facts.update(
                    expected=verdict,
                    asked_lang=lang,
                    verdict=driver.find_element(By.ID, "verdict").get_attribute("data-verdict"),
                    visitor=driver.find_element(By.ID, "visitor").text,
                    guides=[e.text for e in driver.find_elements(By.CSS_SELECTOR, ".guide-title")],
                    glossary=len(driver.find_elements(By.CSS_SELECTOR, ".glossary dt")),
                    console=console(driver),
                    screenshot=shot(driver, shots, f"check-{verdict}-{lang}"),
                )
                result["checks"].append(facts)

        portal = result["portal"]
        driver.get(f"{base}/portal?lang=en")
        portal["redirected_to"] = driver.current_url
        driver.find_element(By.ID, "token").send_keys(plan["isp_token"])
        submit(driver, driver.find_element(By.CSS_SELECTOR, "form.login button"), (By.ID, "t-cases"))
        portal["after_login"] = driver.current_url
        rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-case]")
        portal["cases"] = [
            {
                "id": r.get_attribute("data-case"),
                "address": r.find_elements(By.TAG_NAME, "td")[0].text,
                "status": r.find_element(By.CSS_SELECTOR, "td.status").get_attribute("data-status"),
            }
            for r in rows
        ]
        portal["console"] = console(driver)
        portal["screenshot"] = shot(driver, shots, "portal-cases-en")
        # Report an outcome on the first case through the form.
        first = rows[0]
        case_id = first.get_attribute("data-case")
        Select(first.find_element(By.TAG_NAME, "select")).select_by_value("contacted")
        first.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("called the subscriber")
        submit(driver, first.find_element(By.CSS_SELECTOR, "form button"), (By.ID, "t-cases"))
        row = driver.find_element(By.CSS_SELECTOR, f"tr[data-case='{case_id}']")
        portal["updated"] = {
            "id": case_id,
            "status": row.find_element(By.CSS_SELECTOR, "td.status").get_attribute("data-status"),
        }
        # Downloads with the browser's own session cookie.
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
        for name in ("csv", "json"):
            request = urllib.request.Request(f"{base}/portal?format={name}", headers={"Cookie": cookie})
            with urllib.request.urlopen(request) as response:
                portal[name] = response.read().decode()
        # Another ISP's data: asked for by name, it is not found.
        driver.get(f"{base}/portal?isp={plan['other_isp']}&lang=ja")
        portal["other_isp_title"] = driver.title
        portal["other_isp_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "tr[data-case]"))
        # The 404 shows in the console: proof that console messages are captured at all.
        portal["other_isp_console"] = console(driver)
        driver.get(f"{base}/portal?lang=ja")
        portal["ja_h1"] = driver.find_element(By.TAG_NAME, "h1").text
        portal["ja_screenshot"] = shot(driver, shots, "portal-cases-ja")
        # A new API token, made in the portal.
        driver.get(f"{base}/portal/tokens?lang=en")
        driver.find_element(By.ID, "label").send_keys("ci-script")
        submit(driver, driver.find_element(By.CSS_SELECTOR, "form.new button"), (By.ID, "new-token"))
        portal["new_token"] = driver.find_element(By.ID, "new-token").text
        portal["tokens_console"] = console(driver)
        portal["tokens_screenshot"] = shot(driver, shots, "portal-tokens-en")
    except Exception:
        # What the browser showed when it went wrong, for whoever reads the failure.
        with open(os.path.join(shots, "failure.html"), "w") as out:
            out.write(driver.current_url + "\n" + driver.page_source)
        driver.save_screenshot(os.path.join(shots, "failure.png"))
        print("browser failure: page saved to", os.path.join(shots, "failure.html"), file=sys.stderr)
        raise
    finally:
        driver.quit()
    json.dump(result, open(plan["out"], "w"), indent=1)


if __name__ == "__main__":
    main()
