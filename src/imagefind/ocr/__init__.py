"""Text in images: OCR at index time (:mod:`.engine`, :mod:`.stage`), the text query
(:mod:`.textquery`) and text and hybrid ranking (:mod:`.ranking`). The SQL that stores and
searches the text lives with the stores (:mod:`imagefind.stores.text`)."""
