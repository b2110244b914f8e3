"""Slot extraction (ivr/slots), pure: many phrasings as people say them and as tiny.en writes
them (digits or words, punctuation, "o" for zero, capitals), against a fixed "now" and hours."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.domain import AdvisorInfo, VehicleInfo
from ivr.flow.fakes import store_from_dict
from ivr.hours import Hours
from ivr.slots import Facts, describe, extract, phone_number, ro_number, spoken_digits
from ivr.slots.generalize import generalize
from ivr.slots.names import advisor_named, vehicle_named
from ivr.slots.times import resolve

STORE = store_from_dict({"closures": [{"date": "2026-12-25", "name": "Christmas"}]})
HOURS = Hours.of(STORE)  # Mon-Fri 7-18, Sat 8-13, closed Sunday; New York
WED_10AM = datetime(2026, 11, 25, 10, tzinfo=STORE.tz)


# --- repair-order numbers and phone numbers ---------------------------------------------------

RO_CASES = [
    ("R O seven oh one two three", "70123"),
    ("RO seven o one two three", "70123"),
    ("R.O. 70123", "70123"),
    ("R.O. 70,123.", "70123"),
    ("RO number 7-0-1-2-3", "70123"),
    ("seventy thousand one twenty three", "70123"),
    ("Seventy thousand, one twenty-three.", "70123"),
    ("seven zero one two three", "70123"),
    ("It's 70123.", "70123"),
    ("my repair order is forty seven eleven", "4711"),
    ("four seven one one", "4711"),
    ("47 11", "4711"),
    ("Um, it's, uh, 4711.", "4711"),
    ("seven hundred and one", "701"),
    ("seven hundred one two three", "70123"),
    ("double oh seven one two", "00712"),
    ("my 2019 Tahoe, RO 70123", "70123"),
    ("ticket number 88 21 5", "88215"),
    ("repair order 2020", "2020"),  # a year-like number after "repair order" is the RO
    ("RO 4711 at five", "4711"),
]
NO_RO = [
    "is my car ready",
    "my 2019 Tahoe",  # a model year
    "tomorrow at nine thirty",  # a time
    "nine thirty tomorrow",
    "I have 2 cars",
    "oh, it's the Tahoe",  # "oh" alone is not zero
    "at five",
    "my number is 555-201-0001",  # a phone number
]


@pytest.mark.parametrize(("said", "digits"), RO_CASES)
def test_a_repair_order_number_said_any_way(said: str, digits: str) -> None:
    assert ro_number(said) == digits


@pytest.mark.parametrize("said", NO_RO)
def test_words_without_a_repair_order_number(said: str) -> None:
    assert ro_number(said) is None


PHONE_CASES = [
    ("five five five, two oh one, zero zero zero one", "+15552010001"),
    ("five five five two oh one double oh oh one", "+15552010001"),
    ("555-201-0001", "+15552010001"),
    ("(555) 201-0001", "+15552010001"),
    ("My number is 555 201 0001.", "+15552010001"),
    ("one five five five two zero one zero zero zero one", "+15552010001"),
    ("1-555-201-0001", "+15552010001"),
    ("five fifty five, two oh one, triple oh one", "+15552010001"),
]


@pytest.mark.parametrize(("said", "e164"), PHONE_CASES)
def test_a_phone_number_said_any_way(said: str, e164: str) -> None:
    assert phone_number(said) == e164


@pytest.mark.parametrize("said", ["555 0100", "call me back", "RO 4711"])
def test_no_phone_number_in_short_or_no_numbers(said: str) -> None:
    assert phone_number(said) is None


def test_spoken_digits_joins_every_number() -> None:
    assert spoken_digits("it's four seven one one") == "4711"
    assert spoken_digits("R O seventy thousand one twenty three") == "70123"


# --- days and times ---------------------------------------------------------------------------

# (said, resolved store-local time, precision, what is said back, open then)
TIME_CASES = [
    ("this afternoon", "2026-11-25 14:00", "part", "this afternoon", True),
    ("tomorrow around nine", "2026-11-26 09:00", "time", "tomorrow around 9 AM", True),
    ("Tomorrow around 9.", "2026-11-26 09:00", "time", "tomorrow around 9 AM", True),
    ("at five", "2026-11-25 17:00", "time", "today at 5 PM", True),
    ("I'll be there at 5.", "2026-11-25 17:00", "time", "today at 5 PM", True),
    ("Friday morning", "2026-11-27 09:00", "part", "Friday morning", True),
    ("after lunch", "2026-11-25 13:00", "part", "today after lunch", True),
    ("I'll pick up my Tahoe tomorrow around nine", "2026-11-26 09:00", "time",
     "tomorrow around 9 AM", True),
    ("5:30", "2026-11-25 17:30", "time", "today at 5:30 PM", True),
    ("at 5:30 p.m.", "2026-11-25 17:30", "time", "today at 5:30 PM", True),
    ("around 3pm", "2026-11-25 15:00", "time", "today around 3 PM", True),
    ("around three P.M.", "2026-11-25 15:00", "time", "today around 3 PM", True),
    ("tomorrow at 7", "2026-11-26 07:00", "time", "tomorrow at 7 AM", True),
    ("at seven", "2026-11-26 07:00", "time", "tomorrow at 7 AM", True),  # 7 AM passed, 7 PM closed
    ("at four", "2026-11-25 16:00", "time", "today at 4 PM", True),
    ("at 11", "2026-11-25 11:00", "time", "today at 11 AM", True),
    ("at noon", "2026-11-25 12:00", "time", "today at noon", True),
    ("by noon", "2026-11-25 12:00", "time", "today by noon", True),
    ("after 3", "2026-11-25 15:00", "time", "today after 3 PM", True),
    ("before 4 o'clock", "2026-11-25 16:00", "time", "today before 4 PM", True),
    ("five-ish", "2026-11-25 17:00", "time", "today around 5 PM", True),
    ("quarter to five", "2026-11-25 16:45", "time", "today at 4:45 PM", True),
    ("half past four", "2026-11-25 16:30", "time", "today at 4:30 PM", True),
    ("nine thirty tomorrow", "2026-11-26 09:30", "time", "tomorrow at 9:30 AM", True),
    ("tomorrow at nine thirty", "2026-11-26 09:30", "time", "tomorrow at 9:30 AM", True),
    ("tomorrow at 9 30", "2026-11-26 09:30", "time", "tomorrow at 9:30 AM", True),
    ("tomorrow at four fifteen", "2026-11-26 16:15", "time", "tomorrow at 4:15 PM", True),
    ("tomorrow at four forty five", "2026-11-26 16:45", "time", "tomorrow at 4:45 PM", True),
    ("Thursday at 10 a.m.", "2026-11-26 10:00", "time", "tomorrow at 10 AM", True),
    ("Friday at 4", "2026-11-27 16:00", "time", "Friday at 4 PM", True),
    ("Saturday", "2026-11-28 08:00", "day", "Saturday", True),
    ("on Saturday around 10", "2026-11-28 10:00", "time", "Saturday around 10 AM", True),
    ("Sunday morning", "2026-11-29 09:00", "part", "Sunday morning", False),
    ("next Monday at noon", "2026-11-30 12:00", "time", "Monday at noon", True),
    ("Wednesday", "2026-11-25 07:00", "day", "today", True),
    ("next Wednesday", "2026-12-02 07:00", "day", "Wednesday, December 2", True),
    ("tomorrow", "2026-11-26 07:00", "day", "tomorrow", True),
    ("tomorrow please", "2026-11-26 07:00", "day", "tomorrow", True),
    ("the day after tomorrow", "2026-11-27 07:00", "day", "Friday", True),
    ("tomorrow morning", "2026-11-26 09:00", "part", "tomorrow morning", True),
    ("tomorrow afternoon", "2026-11-26 14:00", "part", "tomorrow afternoon", True),
    ("this evening", "2026-11-25 17:00", "part", "tonight", True),
    ("tonight", "2026-11-25 17:00", "part", "tonight", True),
    ("first thing tomorrow", "2026-11-26 07:00", "part", "first thing tomorrow morning", True),
    ("before you close", "2026-11-25 17:30", "part", "today before closing", True),
    ("at lunch", "2026-11-25 12:00", "part", "today at lunch", True),
    ("in twenty minutes", "2026-11-25 10:20", "time", "today around 10:20 AM", True),
    ("in an hour", "2026-11-25 11:00", "time", "today around 11 AM", True),
    ("in half an hour", "2026-11-25 10:30", "time", "today around 10:30 AM", True),
    ("in a couple of hours", "2026-11-25 12:00", "time", "today around noon", True),
    ("tomorrow at 8 pm", "2026-11-26 20:00", "time", "tomorrow at 8 PM", False),
    ("this weekend", "2026-11-28 08:00", "day", "Saturday", True),
    ("December 3rd", "2026-12-03 07:00", "day", "Thursday, December 3", True),
    ("Dec 3 at noon", "2026-12-03 12:00", "time", "Thursday, December 3 at noon", True),
    ("on the 28th", "2026-11-28 08:00", "day", "Saturday", True),
    ("Monday the thirtieth at 9", "2026-11-30 09:00", "time", "Monday at 9 AM", True),
    ("the twenty eighth", "2026-11-28 08:00", "day", "Saturday", True),
    ("on the 2nd", "2026-12-02 07:00", "day", "Wednesday, December 2", True),
    ("January 2nd", "2027-01-02 08:00", "day", "Saturday, January 2", True),
    ("Christmas morning, December 25th", "2026-12-25 09:00", "part",
     "Friday, December 25 morning", False),  # a closure
    ("Tomorrow, for 30.", "2026-11-26 16:30", "time", "tomorrow at 4:30 PM", True),  # tiny.en
    ("around for pm", "2026-11-25 16:00", "time", "today around 4 PM", True),
]  # fmt: skip
NO_TIME = [
    "is my car ready",
    "call me at 555-312-4456",  # a phone number's groups
    "R O seven oh one two three",
    "4711",
    "can I talk to Dave",
    "I have two cars",
    "I'm calling for an update",  # "for" is four only next to a time
    "give me a second",
    "I may come by",
]


@pytest.mark.parametrize(("said", "at", "precision", "spoken", "is_open"), TIME_CASES)
def test_a_day_and_time_in_the_store_zone(
    said: str, at: str, precision: str, spoken: str, is_open: bool
) -> None:
    when = resolve(said, WED_10AM, HOURS)
    assert when is not None
    assert when.at.tzinfo is not None and when.at.utcoffset() == WED_10AM.utcoffset()
    assert (f"{when.at:%Y-%m-%d %H:%M}", when.precision, when.spoken, when.open) == (
        at,
        precision,
        spoken,
        is_open,
    )
    assert str(when) == spoken


@pytest.mark.parametrize("said", NO_TIME)
def test_words_without_a_time(said: str) -> None:
    assert resolve(said, WED_10AM, HOURS) is None


def test_a_time_already_past_today_is_the_next_day_the_store_is_open_then() -> None:
    friday_evening = datetime(2026, 11, 27, 18, 30, tzinfo=STORE.tz)
    when = resolve("at five", friday_evening, HOURS)
    assert when is not None  # Saturday closes at 1 PM, Sunday closed: Monday
    assert (f"{when.at:%Y-%m-%d %H:%M}", when.spoken) == ("2026-11-30 17:00", "Monday at 5 PM")


def test_a_part_of_the_day_already_over_is_the_next_open_days() -> None:
    afternoon = datetime(2026, 11, 27, 15, tzinfo=STORE.tz)  # Friday 3 PM
    when = resolve("first thing in the morning", afternoon, HOURS)
    assert when is not None and (when.spoken, when.at.hour) == ("first thing tomorrow morning", 8)
    when = resolve("this morning", afternoon, HOURS)  # said so: today
    assert when is not None and when.at.date() == afternoon.date()


def test_a_holiday_is_closed() -> None:
    dec_23 = datetime(2026, 12, 23, 10, tzinfo=STORE.tz)
    when = resolve("Friday morning", dec_23, HOURS)
    assert when is not None and f"{when.at:%m-%d}" == "12-25" and not when.open


def test_the_hour_follows_the_store_hours() -> None:
    late = Hours.of(store_from_dict({"hours": {"wed": [["12:00", "21:00"]]}}))
    when = resolve("at nine", WED_10AM, late)  # open noon to 9 PM: 9 PM would be closed too
    assert when is not None and when.at.hour == 9  # neither open: the usual, 9 AM...
    when = resolve("at eight", WED_10AM, late)
    assert when is not None and when.at.hour == 20  # ...but 8 PM is open and 8 AM is not


def test_a_time_is_in_the_stores_zone_whatever_zone_now_is_in() -> None:
    utc_now = WED_10AM.astimezone(datetime.now().astimezone().tzinfo)
    when = resolve("tomorrow around nine", utc_now, HOURS)
    assert when is not None and when.at.isoformat() == "2026-11-26T09:00:00-05:00"


# --- advisors and vehicles --------------------------------------------------------------------

ADVISORS = [
    AdvisorInfo(1, "Alice Smith", "alice"),
    AdvisorInfo(2, "David Brown", "dbrown"),
    AdvisorInfo(3, "Linda Park", "linda"),
    AdvisorInfo(4, "Will Turner", "will"),
    AdvisorInfo(5, "Bob Jones", "bob"),
]
ADVISOR_CASES = [
    ("Dave", "David Brown"),
    ("can I talk to Dave", "David Brown"),
    ("Can I talk to Linda?", "Linda Park"),
    ("can I talk to lynda", "Linda Park"),  # a recogniser's spelling
    ("I want to speak with David Brown please", "David Brown"),
    ("I'm returning a missed call from Alice.", "Alice Smith"),
    ("Dave left me a message", "David Brown"),
    ("is Mr. Brown there", "David Brown"),
    ("put me through to Will", "Will Turner"),
    ("Is Will there?", "Will Turner"),
    ("I'm returning Alice's call", "Alice Smith"),
    ("can I speak to Bobby", "Bob Jones"),
    ("get me Linda Park", "Linda Park"),
]
NO_ADVISOR = [
    "I will pick it up tomorrow",  # "will" is a word here
    "can I talk to my advisor",
    "can I talk to Susan",  # nobody here by that name
    "my bill is too high",
    "is my car ready",
]


@pytest.mark.parametrize(("said", "name"), ADVISOR_CASES)
def test_an_advisor_named(said: str, name: str) -> None:
    advisor = advisor_named(said, ADVISORS)
    assert advisor is not None and advisor.name == name


@pytest.mark.parametrize("said", NO_ADVISOR)
def test_no_advisor_named(said: str) -> None:
    assert advisor_named(said, ADVISORS) is None


def test_two_advisors_with_one_name_are_no_answer_unless_the_full_name_is_said() -> None:
    two = [*ADVISORS, AdvisorInfo(6, "Dave Miller", "dmiller"), AdvisorInfo(7, "Dave Ng", "ng")]
    assert advisor_named("can I talk to Dave", two) is None
    found = advisor_named("can I talk to Dave Miller", two)
    assert found is not None and found.username == "dmiller"
    found = advisor_named("can I talk to David", two)  # the name itself beats a nickname
    assert found is not None and found.username == "dbrown"


TAHOE = VehicleInfo(1, 2019, "Chevrolet", "Tahoe")
SILVERADO = VehicleInfo(2, 2020, "Chevrolet", "Silverado 1500")
CRV = VehicleInfo(3, 2021, "Honda", "CR-V")
F150 = VehicleInfo(4, 2018, "Ford", "F-150")
VEHICLES = [TAHOE, SILVERADO, CRV, F150]
VEHICLE_CASES = [
    ("the Tahoe", TAHOE),
    ("my Tahoe", TAHOE),
    ("is my taho ready", TAHOE),  # a recogniser's spelling
    ("I'll pick up my Tahoe tomorrow around nine", TAHOE),
    ("my Silverado", SILVERADO),
    ("how's the silverado coming along", SILVERADO),
    ("the CR-V", CRV),
    ("the CRV", CRV),
    ("the C R V", CRV),
    ("my Honda", CRV),
    ("the F-150", F150),
    ("the F 150", F150),
    ("the Ford", F150),
    ("the 2019", TAHOE),
    ("the 2019 Chevy", TAHOE),
]
NO_VEHICLE = ["the Chevy", "my car", "is it ready", "the Camry"]  # two Chevys; none named


@pytest.mark.parametrize(("said", "vehicle"), VEHICLE_CASES)
def test_a_vehicle_named(said: str, vehicle: VehicleInfo) -> None:
    assert vehicle_named(said, VEHICLES) == vehicle


@pytest.mark.parametrize("said", NO_VEHICLE)
def test_no_vehicle_named(said: str) -> None:
    assert vehicle_named(said, VEHICLES) is None


def test_my_truck_is_the_one_truck() -> None:
    assert vehicle_named("is my truck ready", [TAHOE, SILVERADO]) == SILVERADO


# --- together ---------------------------------------------------------------------------------

FACTS = Facts(now=WED_10AM, hours=HOURS, advisors=ADVISORS, vehicles=VEHICLES)


def test_extract_fills_only_the_kinds_asked_and_heard() -> None:
    said = "I'll pick up my Tahoe tomorrow around nine"
    filled = extract(["ro_number", "time", "advisor", "vehicle"], said, FACTS)
    assert set(filled) == {"time", "vehicle"} and filled["vehicle"] == TAHOE
    assert describe(filled) == (
        "time tomorrow around 9 AM (2026-11-26 09:00), vehicle 2019 Chevrolet Tahoe"
    )
    assert extract(["advisor"], said, FACTS) == {}


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown slot kind"):
        extract(["colour"], "red", FACTS)


@pytest.mark.parametrize(
    ("said", "kinds", "heard_as"),
    [
        ("I'll pick up my Tahoe tomorrow around nine", ["vehicle", "time"],
         "i'll pick up my car tomorrow around nine"),
        ("what's the status of R O seven oh one two three", ["ro_number"],
         "what the status of my repair order"),
        ("can I talk to Linda", ["advisor"], "can i talk to my advisor"),
        ("is the 2019 Chevy done", ["vehicle"], "is the car done"),
        ("tomorrow at nine", ["time"], "tomorrow at nine"),
    ],
)  # fmt: skip
def test_the_model_hears_filled_slots_as_the_examples_say_them(
    said: str, kinds: list[str], heard_as: str
) -> None:
    assert generalize(said, extract(kinds, said, FACTS)) == heard_as
