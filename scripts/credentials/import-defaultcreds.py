#!/usr/bin/env python3
"""Add vendor defaults for IoT device classes and a Mirai variant's table to data/credentials.toml.

How dictionary version 2 was made, kept so that anyone can redo it and check it. Nothing at build or
test time needs this script; the survey reads data/credentials.toml only.

Inputs:
  * the `defaultcreds-cheat-sheet` package from PyPI (its product list, shipped as
    DefaultCreds/DefaultCreds_db.json, the package's CSV converted row by row; MIT licence), installed
    in a throw-away venv:
        python3 -m venv /tmp/dcvenv && /tmp/dcvenv/bin/pip install defaultcreds-cheat-sheet==0.5.3.0
        /tmp/dcvenv/bin/python scripts/credentials/import-defaultcreds.py          # shows what it would add
        /tmp/dcvenv/bin/python scripts/credentials/import-defaultcreds.py --write  # rewrites the file
  * scripts/credentials/mirai-hades.tsv: the decoded login table of the Hades Mirai variant.

What it does:
  * keeps every pair already in the file with its id, username, password and weight (ids are what
    findings name: they never change meaning); a pair the inputs also list gains their source name
    (and, for the cheat sheet, the products it is listed for);
  * appends pairs not yet present with the next free ids: first the variant's, then the cheat
    sheet's, most-listed first;
  * takes from the cheat sheet only products of IoT-relevant classes (cameras, DVR/NVRs, routers and
    modems, NAS, printers, switches and consoles, UPS/PDUs, home and industrial IoT, VoIP devices,
    network equipment with telnet/ssh logins, and its generic telnet/ssh lists) and only real
    username/password pairs: no empty username (password-only prompts), nothing that describes a
    value instead of being one ("(serial number)", "<random>", words with spaces);
  * weights: 2 for a pair a bot tries or that the cheat sheet lists for 3 or more products, else 1;
  * keeps the file's preamble (version, change log, sources) as it is: write the change-log entry
    by hand, then run `botscope credentials check`.
"""

import argparse
import collections
import importlib.util
import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
DICTIONARY = ROOT / "data" / "credentials.toml"
VARIANTS = {"mirai-hades": pathlib.Path(__file__).with_name("mirai-hades.tsv")}
CHEAT_SHEET = "defaultcreds-cheat-sheet"
MAX_PRODUCTS = 8

# Product-name patterns of the cheat sheet, per device class. A product matching none is not taken.
CLASSES = [
    ("camera", r"camera|ip-cam|webcam|hikvision|dahua|duhua|\baxis\b|foscam|amcrest|avtech|\bacti\b|arecont|"
     r"avigilon|basler|brickcom|dynacolor|everfocus|flir|geovision|iqinvision|\bjvc\b|lorex|longse|\blts\b|"
     r"march networks|mobotix|northern|oncam|pelco sarix|pelco endura|reolink|samsung techwin|"
     r"samsung electronics|sanyo|scallop|sentry360|speco|stardot|starvedia|sunell|sv3c|swann|uniview|vacron|"
     r"videoiq|vivotek|w-box|hanwha|icatch|maygion|video web server|digital watchdog|hisilicon|jovision|"
     r"ichano|kalatel|etrovision|eurovideo|ernitec|dvtel|intellio|indigovision|siqura|seyeon|pixord|conitec|"
     r"lumens|marshall electronics|iguard|avertx|q-see|ge security|sony|panasonic|toshiba \(ip|bosch|divar|"
     r"crystalview|prolynx|honeywell"),
    ("dvr", r"dvr|nvr|exacq|pelco dx|pelco dvx|american.?dynamics|provision isr|tvt system|dmp v-|ditto"),
    ("router", r"d-?link|tp-?link|tp link|netgear|linksys|asus|belkin|zyxel|huawei|\bzte\b|draytek|mikrotik|"
     r"ubiquiti|unifi|edimax|totolink|tenda|buffalo|billion|comtrend|actiontec|arris|technicolor|thomson|sagem|"
     r"westell|netopia|speedstream|2wire|avm|bewan|pirelli|sitecom|sweex|conceptronic|dynalink|efficient|"
     r"flowpoint|cayman|zcom|zoom|u\.s\. robotics|usrobotics|smc|siemens \(web\)|sphairon|t-com|"
     r"deutsche telekom|orange|livebox|inventel|wanadoo|movistar|verizon|at&t|comcast|telus|telewell|digicom|"
     r"aztech|asmax|airties|allnet|pentagram|planet|planex|level1|micronet|longshine|canyon|surecom|x-micro|"
     r"unex|senao|engenius|peplink|proxicast|cambium|proxim|breezecom|colubris|netcomm|netcore|bhu|jiofi|"
     r"jiofiber|gigafiber|davolink|utstar|beetel|mtnl|ptcl|nokia|ovislink|prolink|corecess|greatspeed|lancom|"
     r"bintec|aethra|amitech|arescom|e-tech|ambit|accton|netgenesis|network everywhere|olitec|pikatel|intex|"
     r"\bion\b|kasda|tiara|ramp networks|webramp|ruijie|h3c|irz|sierra wireless|snapgear|teltronic|telindus|"
     r"speedxess|solwise|sparklan|wline|yakumo|zcomax|waav|wlan_3d|vobis|topcom|tmc|medion|gvc|eminent|blitzz|"
     r"airlink|airway|advantek|cnet|compualynx|creative|tiny|giga\b|mercury|microrouter|fon\b|vonage|zen\b|"
     r"ssangyoung|machspeed|macsense|rnn|terayon|scientific atlanta|general instruments|motorola|"
     r"cable and wireless|bt\b|a-link|aceex|accelerated networks|addon|adtran|adc kentrox|ascom|asante|atl\b|"
     r"atcom|blaeri|broadlogic|cik telecom|com3|datacom|digitus|dvb|e-con|enox|freetech|iso sistemi|"
     r"integrated networks|intracom|jds|joss|kti|laxo|logilink|luxon|magic-pro|megastar|memotec|metro|"
     r"micronics|milan|netstar|nomadix|optilink|osicom|pandatel|pheenet|q-tec|radio shack|redcreek|semaphore|"
     r"sempre|sercom|siips|smartbridges|stratitec|syabas|telebit|teledat|telecom\b|teletronics|texbox|topnet|"
     r"union\b|ut lexar|vextrec|vina|visual networks|wanco|xavi|xd\b"),
    ("nas", r"synology|qnap|thecus|lacie|seagate|infrant|snap appliance|western digital"),
    ("printer", r"printer|brother|canon|epson|kyocera|lanier|ricoh|xerox|oce\b|oki\b|sharp|konica|minolta|"
     r"triumph-adler|kodak|troy|encad|sato|zebra|intermec|quadient|safecom|silex|microplex|extended systems"),
    ("switch-console", r"switch|hirschmann|ruggedcom|moxa|lantronix|perle|opengear|cyclades|avocent|raritan|"
     r"digi\b|allied|signamax|imc networks|garrettcom|3m\b|omnitronix|netport|netbotz|server technology|atrie|"
     r"nanoteq|mrv|cumulus|weidm"),
    ("power", r"apc|powerchute|cyberpower|eaton|liebert|tripp lite|netio|rittal|emerson|eltek|sma america|"
     r"janitza|powerlogic|ecostruxure|schneider"),
    ("iot-ics", r"thermostat|iot|fibaro|eq-3|jeedom|control4|leviton|paradox|amx|kramer|barco|christie|openplc|"
     r"siemens s7|yokogawa|omron|icp das|prosoft|echelon|meinberg|symmetricom|timetools|dji|parrot|"
     r"raspberry pi|osmc|busybox|vxworks|linux$|zenitel"),
    ("voip", r"grandstream|yeastar|zed-3|cellit|citel|telappliant|swissvoice|tiptel|snom|yealink"),
    ("network-equipment", r"^cisco|^3com|juniper|netscreen|^alcatel|^nortel|^lucent|^ascend|bay networks|"
     r"enterasys|extreme networks|foundry|brocade|cabletron|xylan|xyplex|livingston|shiva|fortigate|fortinet|"
     r"sonicwall|watchguard|zywall|check ?point|ericsson"),
    ("generic-telnet-ssh", r"^telnet \(telnet\)$|^ssh \(ssh\)$"),
]
# Products of those makers that are databases or server software, not devices.
NOT_A_DEVICE = re.compile(r"sql|\(db\)|\bibm\b|windows|\(rdp\)")
CLASS_PATTERNS = [(name, re.compile(pattern)) for name, pattern in CLASSES]
# A value that describes a credential instead of being one.
NOT_A_VALUE = re.compile(r"\s|[<>()\[\]{}]|^(any|n/a|none|blank|null|unknown)$|serial", re.IGNORECASE)
SECTIONS = {
    1: "Mirai's table (ids 1-61, mirai-credentials.tsv, with Mirai's weights)",
    62: "vendor defaults, later variants, common weak choices (dictionary version 1)",
    193: "dictionary version 2: the Hades variant's table, then vendor defaults of IoT device classes",
}


def cheat_sheet_rows():
    spec = importlib.util.find_spec("DefaultCreds")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"install {CHEAT_SHEET} first (see this script's help)")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "DefaultCreds_db.json"
    table = json.loads(path.read_text(encoding="utf-8"))["_default"]
    # Row 1 repeats the CSV's header line.
    return [row for key, row in sorted(table.items(), key=lambda kv: int(kv[0])) if row["product"] != "productvendor"]


def value(text):
    text = text.strip()
    return "" if text.lower() == "<blank>" else text


def usable(username, password):
    if not username:
        return "no username (a password-only prompt)"
    if NOT_A_VALUE.search(username) or (password and NOT_A_VALUE.search(password)):
        return "not a username/password pair"
    if len(username) > 64 or len(password) > 64 or not (username + password).isascii():
        return "too long or not ASCII"
    return None


def variant_pairs(name, path):
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("username\t") or not line.strip():
            continue
        username, password, _weight = line.split("\t")
        if usable(username, password) is None:
            pairs.append((username, password))
    return name, pairs


def comment_notes(text):
    """Notes written as a comment line right above an entry (dictionary version 1 kept them so) become
    the entry's `note`."""
    notes, pending, entry = {}, None, False
    for line in text.splitlines():
        if line.startswith("# ") and not line.startswith("# ----"):
            pending = line[2:].strip()
        elif line == "[[credential]]":
            entry = True
        elif entry and line.startswith("id = "):
            if pending:
                notes[int(line[5:])] = pending
            pending, entry = None, False
        elif not line.strip():
            pending = None if not entry else pending
    return notes


def toml_string(text):
    return json.dumps(text, ensure_ascii=False)


def render(credential):
    lines = [
        "[[credential]]",
        f"id = {credential['id']}",
        f"username = {toml_string(credential['username'])}",
        f"password = {toml_string(credential['password'])}",
        f"weight = {credential['weight']}",
        "sources = [" + ", ".join(toml_string(s) for s in credential["sources"]) + "]",
    ]
    if credential.get("note"):
        lines.append(f"note = {toml_string(credential['note'])}")
    if credential.get("products"):
        lines.append("products = [" + ", ".join(toml_string(p) for p in credential["products"]) + "]")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite data/credentials.toml")
    args = parser.parse_args()

    text = DICTIONARY.read_text(encoding="utf-8")
    start = re.search(r"^(# ---- .*\n\n)?\[\[credential\]\]", text, re.MULTILINE)
    preamble = text[: start.start()]
    credentials = tomllib.loads(text)["credential"]
    notes = comment_notes(text[start.start():])
    for credential in credentials:
        note = notes.get(credential["id"])
        if note and not credential.get("note"):
            credential["note"] = note
    by_pair = {(c["username"], c["password"]): c for c in credentials}
    next_id = max(c["id"] for c in credentials) + 1
    added = collections.Counter()

    def add(username, password, source, weight, products=()):
        nonlocal next_id
        entry = by_pair.get((username, password))
        if entry is None:
            entry = {"id": next_id, "username": username, "password": password, "weight": weight, "sources": []}
            next_id += 1
            credentials.append(entry)
            by_pair[(username, password)] = entry
            added[source] += 1
        if source not in entry["sources"]:
            entry["sources"].append(source)
        if products:
            known = set(entry.get("products", []))
            entry["products"] = sorted(known | set(products))[:MAX_PRODUCTS]

    for name, path in VARIANTS.items():
        _, pairs = variant_pairs(name, path)
        for username, password in pairs:
            add(username, password, name, 2)

    skipped = collections.Counter()
    listed = collections.defaultdict(set)
    for row in cheat_sheet_rows():
        product = row["product"].strip()
        if NOT_A_DEVICE.search(product) or not any(pattern.search(product) for _, pattern in CLASS_PATTERNS):
            skipped["not an IoT-relevant class"] += 1
            continue
        username, password = value(row["username"]), value(row["password"])
        why = usable(username, password)
        if why:
            skipped[why] += 1
            continue
        listed[(username, password)].add(product)
    for (username, password), products in sorted(listed.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        add(username, password, CHEAT_SHEET, 2 if len(products) >= 3 else 1, products)

    print(f"pairs: {len(credentials)} ({sum(added.values())} new: {dict(added)})")
    print(f"cheat-sheet rows skipped: {dict(skipped)}")
    if not args.write:
        print("dry run: pass --write to rewrite", DICTIONARY.relative_to(ROOT))
        return
    body = []
    for credential in sorted(credentials, key=lambda c: c["id"]):
        if credential["id"] in SECTIONS:
            body.append(f"# ---- {SECTIONS[credential['id']]} ----\n")
        body.append(render(credential))
    DICTIONARY.write_text(preamble + "\n".join(body), encoding="utf-8")
    print("wrote", DICTIONARY.relative_to(ROOT))


if __name__ == "__main__":
    main()
