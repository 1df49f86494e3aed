"""Readers of an institution's own files, one module per format (bring your own data).

* ``ehr_csv``: a CSV whose columns, types and label the task spec's ``task_args`` name;
* ``images``: an ``.npz`` (``images`` [n,h,w] or [n,c,h,w], ``labels`` [n]) or a folder of PNGs
  with a ``labels.csv`` (``file,label``);
* ``signals``: an ``.npz`` with one ``[n, channels, length]`` array per modality plus ``labels``.

Every reader validates what it reads and raises one-line ``DataError`` messages naming the file,
the row or field, and what to do. ``split`` draws the local train/test split.
"""
