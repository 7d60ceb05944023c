wait frontend
