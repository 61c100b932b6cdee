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
