from courier.neutron import tags

DOCKER_ID = "574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f"


def test_docker_id_split_over_two_tags_within_neutron_limit() -> None:
    low, high = tags.docker_id_tags(DOCKER_ID)
    assert low == "kuryr.net.uuid.lh:574b19b7f738c23238f8cc8fcca5b8b1"
    assert high == "kuryr.net.uuid.uh:63ea21ba16d1fa09e8cc1ab1803e1a1f"
    assert all(len(t) <= 60 for t in (low, high))


def test_docker_id_round_trips_through_tags() -> None:
    assert tags.docker_id_from_tags(set(tags.docker_id_tags(DOCKER_ID)) | {"other"}) == DOCKER_ID
    assert tags.docker_id_from_tags({"other"}) is None


def test_names_match_kuryr_libnetwork() -> None:
    assert tags.network_name(DOCKER_ID) == "kuryr-net-574b19b7"
    assert tags.subnet_name("10.0.0.0/24") == "kuryr-subnet-10.0.0.0/24"
    assert tags.subnetpool_name("10.0.0.0/24") == "kuryrPool-10.0.0.0/24"
    assert tags.existing_network_tag(DOCKER_ID) == "kuryr.net.existing:574b19b7f738"


def test_docker_ids_of_a_network_shared_by_two_hosts() -> None:
    a, b = "a" * 64, "b" * 64
    assert tags.docker_ids_from_tags(set(tags.docker_id_tags(a))) == [a]
    candidates = tags.docker_ids_from_tags({*tags.docker_id_tags(a), *tags.docker_id_tags(b)})
    assert {a, b} <= set(candidates) and len(candidates) == 4
    assert tags.docker_ids_from_tags({"user"}) == []
    assert tags.host_marks({tags.host_tag("h1"), tags.host_tag("h2"), "x"}) == {"h1", "h2"}
