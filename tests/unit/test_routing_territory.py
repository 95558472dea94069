"""Routing that serves the territory, pure parts: rules as data, re-routing, antenna choice, distress,
free places, the travel model, commune lookup with its fallbacks, and the geodata build helpers."""

from __future__ import annotations

import math
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.routing.app import load_rules
from services.routing.directory import seed_entries, shared_gazetteer
from services.routing.domain import (
    Antenna,
    AntennaStatus,
    CapacityReport,
    Reservation,
    Volunteer,
    decide,
    decide_again,
    free_places,
    place,
    route,
    routed_event,
)
from services.routing.geo import Precision, department_of_postal_code
from services.routing.geodata import _centroid, _point, normalise
from services.routing.settings import RoutingSettings
from services.routing.travel import TravelModel, great_circle_km
from shared.schemas import Association, Procedure, RerouteCause, RoutingStatus
from shared.schemas.events import Situation

SS, REBONDS = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS
TODAY = date(2025, 11, 20)
MODEL = TravelModel()
LYON = (45.76769, 4.83537)
RULES = load_rules(RoutingSettings().rules_file)


@pytest.fixture(scope="module")
def gazetteer():
    return shared_gazetteer(RoutingSettings().geodata_file)


def situation(procedure: str = "liquidation_judiciaire", postal_code: str = "69003", **fields) -> Situation:
    return Situation(procedure=procedure, postal_code=postal_code, **fields)


def antenna(
    id_: str,
    lat: float,
    lon: float,
    free: int | None = None,
    association: Association = REBONDS,
    status: AntennaStatus = AntennaStatus.OPEN,
) -> Antenna:
    return Antenna(id_, association, id_.title(), status, f"contact {id_}", lat, lon, free)


# --- rules as data ------------------------------------------------------------------------------------------


def test_the_rules_file_has_one_rule_per_procedure() -> None:
    assert set(RULES.rules) == set(Procedure)
    assert RULES.first_volunteer == {SS: Volunteer.SPONSOR, REBONDS: Volunteer.COACH}


def test_a_rules_file_missing_a_procedure_is_refused(tmp_path: Path) -> None:
    text = RoutingSettings().rules_file.read_text()
    broken = tmp_path / "rules.toml"
    broken.write_text(text.replace('procedure = "sauvegarde"', 'procedure = "conciliation"'))
    with pytest.raises(ValueError, match="two rules for conciliation"):
        load_rules(broken)
    broken.write_text(text.split('[[rules]]\nprocedure = "retablissement_professionnel"')[0])
    with pytest.raises(ValueError, match="retablissement_professionnel"):
        load_rules(broken)


def test_the_reason_says_how_long_ago_and_where_it_goes() -> None:
    decision = decide(situation(court_decision_date=date(2025, 3, 10)), TODAY, RULES)
    assert decision.reasons == ("Liquidation judiciaire, décision du tribunal il y a 8 mois → 60 000 rebonds",)
    assert not decision.handover_watch


def test_a_redressement_is_watched_for_a_handover() -> None:
    decision = decide(situation("redressement_judiciaire"), TODAY, RULES)
    assert decision.association is SS and decision.handover_watch
    assert "60 000 rebonds si le redressement se transforme en liquidation" in decision.reasons[1]


def test_a_handover_follows_the_new_procedure() -> None:
    decision = decide_again(situation("liquidation_judiciaire"), TODAY, RerouteCause.HANDOVER, SS, RULES)
    assert decision.association is REBONDS
    assert decision.reasons[0] == "Transmission demandée par Second Souffle."
    assert decision.rule == "procedure:liquidation_judiciaire"


def test_out_of_scope_never_goes_back_to_the_association_that_let_it_go() -> None:
    decision = decide_again(situation("liquidation_judiciaire"), TODAY, RerouteCause.OUT_OF_SCOPE, REBONDS, RULES)
    assert decision.association is SS
    assert decision.rule == "hors_champ:60000_rebonds"
    assert decision.reasons == ("Jugé hors du champ de 60 000 rebonds → Second Souffle",)


# --- antenna choice -----------------------------------------------------------------------------------------


def test_the_quickest_open_antenna_with_room_is_chosen(gazetteer) -> None:
    location = gazetteer.locate(None, "69003", "Lyon")
    antennas = [
        antenna("lyon", *LYON, free=0),
        antenna("saint-etienne", 45.43959, 4.38748, free=2),
        antenna("grenoble", 45.18663, 5.73631),
        antenna("villeurbanne", 45.77, 4.88, status=AntennaStatus.OPENING),
        antenna("ss-lyon", *LYON, association=SS),
    ]
    placement = place(REBONDS, location, antennas, MODEL)
    assert placement.status is RoutingStatus.ORIENTED and placement.antenna is not None
    assert placement.antenna.id == "saint-etienne" and placement.beyond_one_hour is False
    assert placement.reasons[0].startswith("Antenne Lyon plus proche (")
    assert placement.reasons[0].endswith("mais complète.")
    assert placement.reasons[-1].startswith(f"Antenne Saint-Etienne : environ {placement.minutes} min de trajet")


def test_none_within_the_hour_takes_the_nearest_flagged_beyond_one_hour(gazetteer) -> None:
    location = gazetteer.locate("15014", "15000", "Aurillac")
    placement = place(REBONDS, location, [antenna("clermont", 45.77949, 3.08612), antenna("lyon", *LYON)], MODEL)
    assert placement.antenna is not None and placement.minutes is not None
    assert placement.antenna.id == "clermont" and placement.minutes > 60 and placement.beyond_one_hour
    assert "au-delà d'une heure" in placement.reasons[-1]


def test_no_room_anywhere_is_the_waitlist(gazetteer) -> None:
    location = gazetteer.locate(None, "69003", None)
    placement = place(
        REBONDS, location, [antenna("lyon", *LYON, free=0), antenna("clermont", 45.8, 3.1, free=0)], MODEL
    )
    assert placement.status is RoutingStatus.WAITLISTED and placement.antenna is None
    assert "Aucune place libre" in placement.reasons[-1] and "la plus proche : Lyon" in placement.reasons[-1]
    none_open = place(REBONDS, location, [antenna("bourg", 46.2, 5.2, status=AntennaStatus.CLOSED)], MODEL)
    assert none_open.status is RoutingStatus.WAITLISTED


def test_an_unknown_commune_keeps_the_association_and_asks_staff(gazetteer) -> None:
    s = situation("redressement_judiciaire", "99999", commune="Nulle-Part")
    location = gazetteer.locate(s.insee_code, s.postal_code, s.commune)
    assert location is None
    decided = route(decide(s, TODAY, RULES), s, location, [antenna("ss", *LYON, association=SS)], MODEL, RULES)
    assert decided.status is RoutingStatus.LOCATION_UNKNOWN and decided.decision.association is SS
    event = routed_event(decided, routed_at=datetime.now(UTC), received_at=None)
    assert event.location_flagged and event.antenna_id is None and event.handover_watch
    assert event.status is RoutingStatus.LOCATION_UNKNOWN


def test_acute_distress_with_consent_goes_to_apesa_first_and_resumes(gazetteer) -> None:
    s = situation(acute_distress=True, apesa_consent=True)
    location = gazetteer.locate(None, s.postal_code, None)
    antennas = [antenna("lyon", *LYON)]
    first = route(decide(s, TODAY, RULES), s, location, antennas, MODEL, RULES)
    assert first.status is RoutingStatus.APESA_FIRST and first.placement.antenna is None
    assert "APESA d'abord" in first.reasons[-1] and first.decision.association is REBONDS
    resumed = route(decide(s, TODAY, RULES), s, location, antennas, MODEL, RULES, apesa_done=True)
    assert resumed.status is RoutingStatus.ORIENTED and "Reprise après l'orientation vers APESA." in resumed.reasons


def test_acute_distress_without_consent_is_routed_with_a_priority_call(gazetteer) -> None:
    s = situation(acute_distress=True, apesa_consent=False)
    decided = route(
        decide(s, TODAY, RULES), s, gazetteer.locate(None, s.postal_code, None), [antenna("lyon", *LYON)], MODEL, RULES
    )
    assert decided.status is RoutingStatus.ORIENTED
    assert any("à rappeler en priorité" in r for r in decided.reasons)


def test_the_routed_event_carries_the_antenna_and_the_waitlist_position(gazetteer) -> None:
    s = situation()
    decided = route(
        decide(s, TODAY, RULES), s, gazetteer.locate(None, "69003", None), [antenna("lyon", *LYON)], MODEL, RULES
    )
    event = routed_event(decided, routed_at=datetime.now(UTC), received_at=None, sequence=2)
    assert (event.antenna_id, event.antenna_contact, event.sequence) == ("lyon", "contact lyon", 2)
    assert event.travel_minutes is not None
    assert event.travel_minutes <= 5 and event.location_flagged is False
    waiting = route(
        decide(s, TODAY, RULES),
        s,
        gazetteer.locate(None, "69003", None),
        [antenna("lyon", *LYON, free=0)],
        MODEL,
        RULES,
    )
    event = routed_event(waiting, routed_at=datetime.now(UTC), received_at=None, waitlist_position=3)
    assert event.waitlist_position == 3 and event.reasons[-1] == "Liste d'attente de 60 000 rebonds : position 3."


# --- free places --------------------------------------------------------------------------------------------


def test_free_places_count_the_cases_routed_since_the_report() -> None:
    as_of = datetime(2025, 11, 1, tzinfo=UTC)
    reported = CapacityReport(coach_slots_free=3, sponsor_slots_free=1, as_of=as_of)
    reservations = [
        Reservation(key="a/1", case_id="a", at=as_of - timedelta(hours=1)),  # already in the report
        Reservation(key="b/1", case_id="b", at=as_of + timedelta(hours=1)),
        Reservation(key="c/1", case_id="c", at=(as_of + timedelta(hours=2)).replace(tzinfo=None)),
    ]  # naive from store
    assert free_places(reported, reservations, Volunteer.COACH) == 1
    assert free_places(reported, reservations, Volunteer.SPONSOR) == -1
    assert free_places(reported, reservations, Volunteer.COACH, exclude_case="b") == 2
    assert free_places(None, reservations, Volunteer.COACH) is None


# --- travel model -------------------------------------------------------------------------------------------


def test_great_circle_distance_of_known_pairs() -> None:
    assert great_circle_km(*LYON, 45.18663, 5.73631) == pytest.approx(94, abs=3)  # Lyon - Grenoble
    assert great_circle_km(*LYON, *LYON) == 0
    lats, lons = np.array([45.18663, 46.20513]), np.array([5.73631, 5.22523])
    vector = great_circle_km(LYON[0], LYON[1], lats, lons, xp=np)
    assert vector == pytest.approx([great_circle_km(*LYON, la, lo) for la, lo in zip(lats, lons, strict=True)])


def test_minutes_follow_the_configured_model() -> None:
    model = TravelModel(detour_factor=1.5, road_speed_kmh=60, overhead_minutes=10)
    assert model.minutes(40) == pytest.approx(10 + 60)
    assert model.km_within(70) == pytest.approx(40)
    assert TravelModel().minutes_between(*LYON, 46.20513, 5.22523) == pytest.approx(57, abs=2)  # Bourg


def test_settings_build_the_model() -> None:
    settings = RoutingSettings(detour_factor=1.4, road_speed_kmh=70, travel_overhead_minutes=5, one_hour_minutes=45)
    assert settings.travel_model() == TravelModel(1.4, 70, 5, 45)


# --- where a person is --------------------------------------------------------------------------------------


def test_every_metropolitan_department_has_communes_with_positions(gazetteer) -> None:
    communes = gazetteer.current_communes()
    metro = [p for p in communes if not p.dept.startswith("97")]
    assert len(metro) > 34_700
    assert {p.dept for p in metro} >= {f"{n:02d}" for n in range(1, 96) if n != 20} | {"2A", "2B"}
    assert all(41 < p.lat < 51.5 and -5.5 < p.lon < 10 for p in metro)


def test_lookup_by_insee_code_then_postal_code_and_name(gazetteer) -> None:
    assert gazetteer.locate("01053", None, None).label == "Bourg-en-Bresse (01053)"
    lyon3 = gazetteer.locate(None, "69003", "Lyon")
    assert lyon3.code == "69383" and not lyon3.flagged  # a district answers to its city's name
    typed = gazetteer.locate(None, "42000", "st etienne")
    assert typed.code == "42218" and typed.precision is Precision.COMMUNE


def test_a_postal_code_of_several_communes_without_a_name_is_approximate(gazetteer) -> None:
    location = gazetteer.locate(None, "01300", None)
    assert location.precision is Precision.POSTAL_CODE and location.flagged and location.dept == "01"


def test_fallbacks_for_unknown_codes(gazetteer) -> None:
    wrong_code = gazetteer.locate("01999", "01000", "Bourg-en-Bresse")
    assert wrong_code.code == "01053" and wrong_code.note == "code commune 01999 inconnu" and wrong_code.flagged
    wrong_name = gazetteer.locate(None, "01000", "Paris")
    assert wrong_name.precision is Precision.POSTAL_CODE
    assert wrong_name.note == "commune « Paris » absente du code postal 01000"
    department = gazetteer.locate(None, "01999", None)
    assert department.precision is Precision.DEPARTMENT and department.label == "département Ain (01)"
    assert gazetteer.locate(None, "00000", None) is None


def test_postal_code_departments() -> None:
    assert [department_of_postal_code(c) for c in ("01000", "20000", "20200", "97400")] == ["01", "2A", "2B", "974"]


def test_names_compare_as_people_type_them() -> None:
    assert normalise("Saint-Étienne") == normalise("st etienne") == "saint etienne"
    assert normalise("L'Abergement-Clémenciat") == "l abergement clemenciat"


def test_geodata_points_and_centroids() -> None:
    empty = "0101000000" + struct.pack("<dd", math.nan, math.nan).hex()
    assert _point(empty) is None and _point("\\N") is None
    assert _point("0101000000" + struct.pack("<dd", 4.8, 45.7).hex()) == (45.7, 4.8)
    square = [(4.0, 45.0), (6.0, 45.0), (6.0, 47.0), (4.0, 47.0), (4.0, 45.0)]
    polygon = (
        "0103000000"
        + struct.pack("<II", 1, len(square)).hex()
        + b"".join(struct.pack("<dd", *xy) for xy in square).hex()
    )
    assert _centroid(polygon) == pytest.approx((46.0, 5.0))


def test_the_default_directory_is_placed_on_the_map(gazetteer) -> None:
    entries = {e.id: e for e in seed_entries(gazetteer)}
    assert len(entries) == 9
    assert entries["60000_rebonds-bourg-en-bresse"].status is AntennaStatus.OPENING
    assert entries["second_souffle-lyon"].dept == "69"
    assert all(e.id.startswith(f"{e.association.value}-") for e in entries.values())
