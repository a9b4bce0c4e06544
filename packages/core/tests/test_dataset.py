import pytest

from bat_core.dataset import Dataset
from bat_core.errors import DatasetError


def write_project(root, csv_text, files=()):
    (root / "data" / "audio").mkdir(parents=True)
    (root / "data" / "annotations.csv").write_text(csv_text)
    for name in files:
        path = root / "data" / "audio" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def test_demo_dataset_has_labels_and_items(demo_root):
    dataset = Dataset.from_root(demo_root)
    assert len(dataset) == 6
    assert {"call_type", "site"} <= set(dataset.label_columns)
    assert set(dataset.labels("call_type")) == {"FM", "CF-FM", "QCF"}
    assert all(item.exists for item in dataset)
    assert dataset[0].stem == dataset[0].file_name.removesuffix(".wav")


def test_missing_csv_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetError, match="annotations not found.*data/annotations.csv"):
        Dataset.from_root(tmp_path)


def test_missing_column_lists_columns_found(tmp_path):
    write_project(tmp_path, "file,species\na.wav,x\n")
    with pytest.raises(DatasetError, match=r"no 'File Name' column; columns found: \['file', 'species'\]"):
        Dataset.from_root(tmp_path)


def test_unreadable_csv(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "annotations.csv").write_bytes(b"\xff\xfe\x00\x81\x82 not utf8")
    with pytest.raises(DatasetError, match="cannot read"):
        Dataset.from_root(tmp_path)


def test_duplicate_names_refused(tmp_path):
    write_project(tmp_path, "File Name\na.wav\nb.wav\na.wav\n")
    with pytest.raises(DatasetError, match="duplicate file names: 'a.wav'"):
        Dataset.from_root(tmp_path)


def test_colliding_stems_refused(tmp_path):
    write_project(tmp_path, "File Name\na.wav\na.flac\nsite/b.wav\nother/b.wav\n")
    with pytest.raises(DatasetError, match="stems collide") as raised:
        Dataset.from_root(tmp_path)
    assert "'a.flac', 'a.wav'" in str(raised.value)
    assert "'other/b.wav', 'site/b.wav'" in str(raised.value)


@pytest.mark.parametrize("name", ["../secret.wav", "/etc/passwd", "sub/../../x.wav", "C:\\x.wav", "..\\x.wav"])
def test_names_escaping_audio_dir_refused(tmp_path, name):
    write_project(tmp_path, f"File Name\nok.wav\n{name}\n")
    with pytest.raises(DatasetError, match="refused"):
        Dataset.from_root(tmp_path)


def test_empty_name_refused_with_line_number(tmp_path):
    write_project(tmp_path, 'File Name,x\na.wav,1\n"",2\n')
    with pytest.raises(DatasetError, match="line\\(s\\) 3"):
        Dataset.from_root(tmp_path)


def test_missing_audio_is_reported_not_fatal(tmp_path):
    write_project(tmp_path, "File Name,species\na.wav,x\ngone.wav,y\n", files=["a.wav"])
    dataset = Dataset.from_root(tmp_path)
    assert len(dataset) == 2
    assert [item.file_name for item in dataset.missing()] == ["gone.wav"]


def test_labels_are_strings_and_empty_cells_stay_empty(tmp_path):
    write_project(tmp_path, "File Name,n_calls,species\n a.wav ,3,\n", files=["a.wav"])
    item = Dataset.from_root(tmp_path)[0]
    assert item.file_name == "a.wav"
    assert item.labels == {"n_calls": "3", "species": ""}


def test_select_by_label_and_limit(demo_root):
    dataset = Dataset.from_root(demo_root)
    fm = dataset.select({"call_type": "FM"})
    assert len(fm) == 2 and set(fm.labels("call_type")) == {"FM"}
    assert len(dataset.select({"call_type": ["FM", "QCF"]}, limit=3)) == 3
    assert len(dataset.select(limit=0)) == 0
    with pytest.raises(DatasetError, match="cannot select on column 'nope'"):
        dataset.select({"nope": "x"})
    with pytest.raises(DatasetError, match="--limit"):
        dataset.select(limit=-1)


def test_derived_can_live_elsewhere(demo_root, tmp_path):
    dataset = Dataset.from_root(demo_root, derived=tmp_path / "out")
    assert dataset.paths.derived == (tmp_path / "out").resolve()
    assert dataset.paths.tokens_dir == (tmp_path / "out" / "tokens").resolve()
    assert dataset.paths.ast_features_dir == (tmp_path / "out" / "ast_features").resolve()
    default = Dataset.from_root(demo_root).paths
    assert default.derived == demo_root.resolve() / "derived"


def test_shards_partition_the_selection_by_file_name(demo_root):
    from bat_core.dataset import shard_of

    dataset = Dataset.from_root(demo_root)
    shards = [dataset.select(limit=5, shard=(i, 3)) for i in range(3)]
    names = [item.file_name for shard in shards for item in shard]
    assert sorted(names) == sorted(item.file_name for item in dataset.select(limit=5))
    assert shard_of("a.wav", 4) == shard_of("a.wav", 4) == int(__import__("hashlib").sha1(b"a.wav").hexdigest(), 16) % 4
    with pytest.raises(DatasetError, match="--shard"):
        dataset.select(shard=(3, 3))
